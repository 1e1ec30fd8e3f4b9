"""A corpus of hostile and careless GA4 export records for one window of demo-city-paper read from
GA4, beside known good readers: each case is one file of the day's intraday table (its name names
the case), with what the platform must make of it (the fields as in `hostile.Case`).

Good readers never share a reader id, a session or a file with a case, so whatever a case holds,
the good readers' interactions must not change."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import orjson

from article_rec_assets_tests.assets.hostile import ARTICLES, HOST, Case
from article_rec_demo.generator.ga4 import ga4_event

WINDOW = datetime(2026, 3, 3, 10, tzinfo=UTC)
URLS = [f"https://{HOST}{path}" for path in ARTICLES]
GOOD_READERS = 200


def good_records() -> list[dict]:
    """Reader r views article r % 6 and reports (r % 6 + 1) x 5 s of reading on it."""
    records = []
    for r in range(GOOD_READERS):
        at = WINDOW + timedelta(seconds=30 * r)
        url = URLS[r % len(URLS)]
        records += [
            ga4_event("page_view", at, f"good-{r}", 1_000 + r, url),
            ga4_event(
                "user_engagement",
                at + timedelta(seconds=20),
                f"good-{r}",
                1_000 + r,
                url,
                (r % 6 + 1) * 5_000,
            ),
        ]
    return records


def good_seconds() -> dict[str, float]:
    return {f"good-{r}": float((r % 6 + 1) * 5) for r in range(GOOD_READERS)}


def _file(*records: dict | bytes) -> bytes:
    return gzip.compress(
        b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records), mtime=0
    )


def cases() -> list[Case]:
    at = WINDOW + timedelta(minutes=30)
    url = URLS[0]

    def read(reader: str, msec: int = 10_000, **kwargs) -> list[dict]:
        """A page view of article 0 and the time read on it, by a reader of the case's own."""
        return [
            ga4_event("page_view", at, reader, 1, url, **kwargs),
            ga4_event("user_engagement", at + timedelta(seconds=30), reader, 1, url, msec, **kwargs),
        ]

    copy = read("copy")
    cut = zlib.compressobj(wbits=31)
    payload = b"".join(orjson.dumps(r) + b"\n" for r in read("cut")) + b'{"event_name": "scr'
    return [
        # A NUL character: the page stays its own (not article 0's), the reader its own (not good-0's).
        Case(
            "nul_in_page_location",
            _file(
                ga4_event("page_view", at, "nul-page", 1, url),
                ga4_event("user_engagement", at, "nul-page", 1, url + "\0x", engagement_msec=26_000),
            ),
            filtered={"not_an_article": 1},
            readers=1,
        ),
        Case("nul_in_reader", _file(*read("good-0\0x")), readers=1),
        Case(
            "implausible_engagement",
            _file(*read("stuck-timer", msec=9_200_000_000_000_000_000)),
            quarantined={"implausible_engagement_time": 1},
            readers=1,
        ),
        Case(
            "invalid_json",
            _file(b'{"event_name": "page_view", "event_timestamp": '),
            quarantined={"invalid_json": 1},
        ),
        Case("not_an_object", _file(b"[1, 2, 3]"), quarantined={"not_a_json_object": 1}),
        Case(
            "params_not_records",
            _file({**ga4_event("page_view", at, "params", 1, url), "event_params": {"page_location": url}}),
            quarantined={"bad_event_params": 1},
        ),
        Case(
            "negative_engagement",
            _file(ga4_event("user_engagement", at, "negative", 1, url, engagement_msec=-5)),
            quarantined={"bad_engagement_time": 1},
        ),
        Case(
            "page_view_without_location",
            _file(ga4_event("page_view", at, "nowhere", 1, None)),
            quarantined={"page_event_without_path": 1},
        ),
        Case(
            "no_event_name",
            _file({**ga4_event("page_view", at, "nameless", 1, url), "event_name": ""}),
            quarantined={"missing_event_name": 1},
        ),
        # The same records serialized again (params reordered, a field added by a rewrite).
        Case(
            "copy_serialized_again",
            _file(
                *copy, *({**r, "is_active_user": True, "event_params": r["event_params"][::-1]} for r in copy)
            ),
            readers=1,
            duplicates=2,
        ),
        # A click's time was read on its page: kept as reading time, the click itself dropped.
        Case(
            "time_on_a_click",
            _file(
                ga4_event("page_view", at, "clicker", 1, url),
                ga4_event("click", at + timedelta(seconds=12), "clicker", 1, url, engagement_msec=12_000),
            ),
            readers=1,
        ),
        Case(
            "cut_gzip",
            cut.compress(payload) + cut.flush(zlib.Z_SYNC_FLUSH),
            quarantined={"truncated_gzip": 1},
            readers=1,
        ),
        Case(
            "bot_device",
            _file(*read("crawler", device={"category": "desktop", "web_info": {"browser": "Googlebot"}})),
            filtered={"bot_useragent": 2},
        ),
        Case("consent_denied", _file(*read(None)), filtered={"no_reader_id": 2}),
        Case(
            "other_host",
            _file(
                ga4_event("page_view", at, "elsewhere", 1, "https://evil.example" + ARTICLES[0]),
                ga4_event("user_engagement", at, "elsewhere", 1, "https://evil.example" + ARTICLES[0], 9_000),
            ),
            filtered={"host_not_allowed": 2},
        ),
    ]

"""A corpus of hostile and careless input for one window of demo-city-paper, beside known good
events: each case is one object in the window's hour folders (its key names the case), with what
the platform must make of it.

`quarantined`: the reasons its lines are set aside with (by the object's key); `filtered`: the
events of it that parse but are dropped by `sessionized_interactions`, by reason; `readers`: the
hostile readers of it that remain as interactions (an odd but valid event is an event);
`duplicates`: its events dropped as copies. Good events never share an id, a reader or an object
with a case, so whatever a case holds, the good readers' interactions must not change.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from article_rec_assets_tests.support import CONTRACT_TSV_POSITIONS, TSV_FIELD_COUNT

HOST = "democitypaper.example"
ARTICLES = [f"/article/{100 + i}/story-{i}/" for i in range(6)]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB = "contexts_com_iab_snowplow_spiders_and_robots_1"


def event_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def good_events(readers: int = 400) -> list[bytes]:
    """Readers each reading one article in the window: a page view and 2 to 7 pings, 10 s apart
    (engaged time 5 + 10 x (pings - 1) by Snowplow's rules)."""
    lines = []
    for r in range(readers):
        start = datetime(2026, 3, 3, 10, tzinfo=UTC) + timedelta(minutes=r % 110)
        base = {
            "domain_userid": f"good-{r}",
            "domain_sessionid": str(uuid.UUID(int=10_000 + r, version=4)),
            "page_urlhost": HOST,
            "page_urlpath": ARTICLES[r % len(ARTICLES)],
            "useragent": UA,
            WEB_PAGE: [{"id": f"pv-good-{r}"}],
        }
        for k in range(2 + r % 6 + 1):
            at = (start + timedelta(seconds=10 * k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            name = "page_view" if k == 0 else "page_ping"
            lines.append(
                orjson.dumps(
                    {
                        "event_id": event_id(1_000_000 + r * 100 + k),
                        "event_name": name,
                        "collector_tstamp": at,
                        "dvce_created_tstamp": at,
                        **base,
                    }
                )
            )
    return lines


_ids = iter(())  # the hostile events' ids, counted afresh by each `cases()`: the same corpus each time


def hostile(reader: str, name: str = "page_view", at: str = "2026-03-03T10:30:00.000Z", **fields) -> dict:
    """A valid event of a hostile reader (its own id, reader, session, page view)."""
    record = {
        "event_id": event_id(next(_ids)),
        "event_name": name,
        "collector_tstamp": at,
        "dvce_created_tstamp": at,
        "domain_userid": reader,
        "domain_sessionid": f"session-{reader}",
        "page_urlhost": HOST,
        "page_urlpath": ARTICLES[0],
        "useragent": UA,
        WEB_PAGE: [{"id": f"pv-{reader}"}],
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def line(reader: str, **fields) -> bytes:
    return orjson.dumps(hostile(reader, **fields))


def tsv(**fields: str) -> bytes:
    values = [""] * TSV_FIELD_COUNT
    defaults = {
        "event_id": event_id(next(_ids)),
        "event": "page_view",
        "collector_tstamp": "2026-03-03 10:30:00.000",
        "domain_userid": "tsv-reader",
        "page_urlhost": HOST,
        "page_urlpath": ARTICLES[1],
        "useragent": UA,
    }
    for name, value in {**defaults, **fields}.items():
        values[CONTRACT_TSV_POSITIONS[name]] = value
    return "\t".join(values).encode()


def cut_gzip(payload: bytes) -> bytes:
    """A gzip stream that stops right after `payload` (no final block, no trailer): a cut upload."""
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)


@dataclass
class Case:
    name: str
    data: bytes  # the object's bytes
    quarantined: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    readers: int = 0
    duplicates: int = 0
    gz: bool = False


def lines(*parts: bytes) -> bytes:
    return b"\n".join(parts) + b"\n"


def cases() -> list[Case]:
    global _ids
    _ids = iter(range(5_000_000, 6_000_000))
    good_pair = [
        line("pair", name="page_view"),
        line("pair", name="page_ping", at="2026-03-03T10:30:10.000Z"),
    ]
    repeated = line("repeat-reader")
    c = [
        # --- JSON lines that are not events (a valid JSON value that is no object says so; a deep
        # but valid object is an event without an id; bytes that are not UTF-8 say that)
        Case("truncated-json", lines(b'{"event_id": "abc'), {"invalid_json": 1}),
        Case("trailing-comma", lines(b'{"event_id": "x", }'), {"invalid_json": 1}),
        Case("two-objects-one-line", lines(line("t1") + line("t2")), {"invalid_json": 1}),
        Case("json-array", lines(b'[{"event_id": "x"}]'), {"not_a_json_object": 1}),
        Case("json-string", lines(b'"just a string"'), {"not_a_json_object": 1}),
        Case("json-number", lines(b"42"), {"not_a_json_object": 1}),
        Case("empty-object", lines(b"{}"), {"missing_event_id": 1}),
        Case("nested-too-deep", lines(b'{"a":' * 2000 + b"1" + b"}" * 2000), {"missing_event_id": 1}),
        Case("invalid-utf8-in-string", lines(b'{"event_id": "\xff\xfe"}'), {"undecodable_bytes": 1}),
        Case("lone-surrogate-escape", lines(b'{"page_urlpath": "/a/\\ud800/"}'), {"invalid_json": 1}),
        Case("nan-literal", lines(b'{"event_id": NaN}'), {"invalid_json": 1}),
        Case("json-null-line", lines(b"null"), {"not_a_json_object": 1}),
        # --- events with a missing or broken field
        Case("missing-event-id", lines(line("m1", event_id=None)), {"missing_event_id": 1}),
        Case(
            "null-event-id", lines(orjson.dumps({**hostile("m2"), "event_id": None})), {"missing_event_id": 1}
        ),
        Case("malformed-event-id", lines(line("m3", event_id="not-a-uuid")), {"malformed_event_id": 1}),
        Case("nul-in-event-id", lines(line("m4", event_id=event_id(7) + "\x00")), {"malformed_event_id": 1}),
        Case(
            "sql-in-event-id",
            lines(line("m5", event_id="1'; DROP TABLE model; --")),
            {"malformed_event_id": 1},
        ),
        Case("missing-timestamp", lines(line("m6", collector_tstamp=None)), {"missing_timestamp": 1}),
        Case(
            "unparseable-timestamp",
            lines(line("m7", collector_tstamp="yesterday")),
            {"unparseable_timestamp": 1},
        ),
        Case(
            "timestamp-year-2099",
            lines(line("m8", collector_tstamp="2099-01-01T00:00:00Z")),
            {"timestamp_in_future": 1},
        ),
        Case(
            "timestamp-a-day-ahead",
            lines(line("m9", collector_tstamp="2026-03-04T12:00:00Z")),
            {"timestamp_in_future": 1},
        ),
        Case("missing-event-name", lines(line("m10", event_name=None)), {"missing_event_name": 1}),
        Case("page-view-without-path", lines(line("m11", page_urlpath=None)), {"page_event_without_path": 1}),
        Case(
            "page-ping-empty-path",
            lines(line("m12", name="page_ping", page_urlpath="")),
            {"page_event_without_path": 1},
        ),
        Case(
            "timestamp-as-number",
            lines(line("m13", collector_tstamp=1772532000)),
            {"unparseable_timestamp": 1},
        ),
        # --- valid events a site does not count (sessionized_interactions filters them)
        Case(
            "nul-googlebot-user-agent",
            lines(line("f1", useragent=UA + "\x00 Googlebot")),
            filtered={"bot_useragent": 1},
        ),
        Case(
            "googlebot",
            lines(line("f2", useragent="Googlebot/2.1 (+http://www.google.com/bot.html)")),
            filtered={"bot_useragent": 1},
        ),
        Case("iab-spider", lines(line("f3", **{IAB: [{"spiderOrRobot": True}]})), filtered={"iab_spider": 1}),
        Case("empty-user-agent", lines(line("f4", useragent=None)), filtered={"empty_useragent": 1}),
        Case(
            "staging-host",
            lines(line("f5", page_urlhost="staging.democitypaper.example")),
            filtered={"host_not_allowed": 1},
        ),
        Case("localhost", lines(line("f6", page_urlhost="localhost")), filtered={"host_not_allowed": 1}),
        Case(
            "read-days-later",
            lines(line("f7", dvce_created_tstamp="2026-02-20T10:00:00Z")),
            filtered={"too_late": 1},
        ),
        Case("struct-event", lines(line("f8", name="struct")), filtered={"other_event_type": 1}),
        Case("no-reader", lines(line("f9", domain_userid=None)), filtered={"no_reader_id": 1}),
        Case("not-an-article", lines(line("f10", page_urlpath="/about/")), filtered={"not_an_article": 1}),
        Case(
            "nul-in-article-path",
            lines(line("f11", page_urlpath=ARTICLES[0] + "\x00x")),
            filtered={"not_an_article": 1},
        ),
        Case(
            "path-of-5000-chars",
            lines(line("f12", page_urlpath="/article/1/" + "a" * 5000 + "/x")),
            filtered={"not_an_article": 1},
        ),
        Case(
            "path-traversal",
            lines(line("f13", page_urlpath="/../../etc/passwd")),
            filtered={"not_an_article": 1},
        ),
        Case(
            "sql-in-path",
            lines(line("f14", page_urlpath="/article/1'; DROP TABLE path; --/")),
            filtered={"not_an_article": 1},
        ),
        Case(
            "html-in-path",
            lines(line("f15", page_urlpath="/<script>alert(1)</script>/")),
            filtered={"not_an_article": 1},
        ),
        # --- odd but valid events: kept, for their own reader only
        Case("reader-id-as-number", lines(line("k1", domain_userid=7)), readers=1),
        Case("script-in-user-agent", lines(line("k2", useragent="<script>alert(1)</script>")), readers=1),
        Case("user-agent-of-1-mb", lines(line("k3", useragent="Mozilla/5.0 " + "x" * (1 << 20))), readers=1),
        Case("emoji-and-rtl-reader", lines(line("k4 📰 \u202e")), readers=1),
        Case(
            "timestamp-with-offset",
            lines(line("k5", collector_tstamp="2026-03-03T15:30:00+05:00")),
            readers=1,
        ),
        Case("unparseable-device-time", lines(line("k6", dvce_created_tstamp="soon")), readers=1),
        Case("web-page-context-not-a-list", lines(line("k7", **{WEB_PAGE: "pv"})), readers=1),
        Case("ping-without-page-view", lines(line("k8", name="page_ping")), readers=1),
        Case(
            "amp-negative-engaged-time",
            lines(
                line(
                    "k9",
                    name="amp_page_ping",
                    domain_userid=None,
                    domain_sessionid=None,
                    **{
                        AMP_ID: [{"ampClientId": "amp-k9"}],
                        AMP_WEB_PAGE: [{"ampPageViewId": "apv-k9"}],
                        AMP_PAGE_PING: {"totalEngagedTime": -50},
                    },
                )
            ),
            readers=1,
        ),
        Case(
            "amp-engaged-time-as-text",
            lines(
                line(
                    "k10",
                    name="amp_page_ping",
                    domain_userid=None,
                    domain_sessionid=None,
                    **{AMP_ID: [{"ampClientId": "amp-k10"}], AMP_PAGE_PING: {"totalEngagedTime": "lots"}},
                )
            ),
            readers=1,
        ),
        Case(
            "unknown-fields",
            lines(line("k11", surprise={"deep": [1, 2, {"x": None}]}, another="field")),
            readers=1,
        ),
        Case(
            "crlf-line-endings",
            line("k12") + b"\r\n" + line("k12", name="page_ping", at="2026-03-03T10:30:10.000Z") + b"\r\n",
            readers=1,
        ),
        Case("same-event-twice", lines(repeated, repeated), readers=1, duplicates=1),
        Case("a-pair-and-its-copy", lines(*good_pair, *good_pair), readers=1, duplicates=2),
        # --- TSV lines
        Case("tsv-130-fields", lines(b"\t".join([b"x"] * 130)), {"wrong_field_count": 1}),
        Case("tsv-132-fields", lines(b"\t".join([b"x"] * 132)), {"wrong_field_count": 1}),
        Case("tsv-only-tabs", lines(b"\t" * 10), {"wrong_field_count": 1}),
        Case("tsv-missing-event-id", lines(tsv(event_id="")), {"missing_event_id": 1}),
        Case(
            "tsv-bad-timestamp",
            lines(tsv(collector_tstamp="2026-13-45 99:99:99")),
            {"unparseable_timestamp": 1},
        ),
        Case(
            "tsv-latin-1-bytes",
            lines(tsv(domain_userid="t-latin").replace(b"t-latin", b"caf\xe9")),
            {"undecodable_bytes": 1},
        ),
        Case("tsv-unreadable-contexts", lines(tsv(domain_userid="t-ctx", contexts="{not json")), readers=1),
        Case(
            "binary-garbage-line", lines(bytes(range(256))), {"undecodable_bytes": 1, "wrong_field_count": 1}
        ),
        Case("a-line-of-3-mb", lines(b"z" * (3 << 20)), {"wrong_field_count": 1}),
        # --- objects
        Case("empty-object-file", b""),
        Case("only-blank-lines", b"\n\n\r\n  \n"),
        Case("byte-order-mark", b"\xef\xbb\xbf" + lines(line("o1")), readers=1),
        Case(
            "truncated-gzip",
            cut_gzip(lines(line("o2")) + b'{"event_id": "par'),
            {"truncated_gzip": 1},
            readers=1,
            gz=True,
        ),
        Case("gzip-header-only", gzip.compress(b"x")[:10], {"truncated_gzip": 1}, gz=True),
        # Its one line lies inside the damaged block: nothing complete comes before the damage.
        Case(
            "corrupt-gzip-tail",
            gzip.compress(lines(line("o3")))[:-12] + b"\x00" * 12,
            {"truncated_gzip": 1},
            gz=True,
        ),
        Case(
            "gzip-then-garbage",
            gzip.compress(lines(line("o4"))) + b"GARBAGE",
            {"truncated_gzip": 1},
            readers=1,
            gz=True,
        ),
        Case(
            "two-gzip-members",
            gzip.compress(lines(line("o5"))) + gzip.compress(lines(b"{oops")),
            {"invalid_json": 1},
            readers=1,
            gz=True,
        ),
        Case("zero-padded-gzip", gzip.compress(lines(line("o6"))) + b"\x00" * 512, readers=1, gz=True),
        Case(
            "gzip-bomb",
            gzip.compress(lines(line("o7")) + b" " * (8 << 20), 9),
            {"object_too_large": 1},
            readers=1,
            gz=True,
        ),
        Case(
            "png-not-events",
            b"\x89PNG\r\n\x1a\n" + bytes(200),
            {"undecodable_bytes": 1, "wrong_field_count": 2},
        ),
    ]
    return c

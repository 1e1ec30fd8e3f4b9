"""GA4's export as raw events: tables per day, attribution of engaged time, replacement of the
intraday table, bad records, and the sessions made of them."""

import gzip
from datetime import UTC, datetime, timedelta
from functools import partial

import orjson
import pandas as pd
import pytest

from article_rec_assets.ingestion.ga4 import (
    DAILY,
    INTRADAY,
    GA4TableChanged,
    parse_ga4_objects,
    property_dates,
    read_ga4_window,
    tables_to_read,
)
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import GA4Settings, SiteConfig
from article_rec_demo.generator.ga4 import ga4_event, write_ga4_table

DAY = datetime(2026, 12, 1, tzinfo=UTC)
HOST = "https://democitypaper.example"
A, B, C = (f"{HOST}/article/{n}/story-{n}/" for n in (101, 102, 103))


def at(hour: int, minute: int = 0, second: float = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


@pytest.fixture
def site(city: SiteConfig) -> SiteConfig:
    events = city.events.model_copy(update={"ga4": GA4Settings()})
    return city.model_copy(update={"events": events})


def window(site: SiteConfig, root, start: datetime, end: datetime):
    bucket = EventBucket(root_dir=str(root))
    return read_ga4_window(
        partial(bucket.folder_keys, site), partial(bucket.folder_objects, site), site.events, start, end
    )


def seconds_by_article(site: SiteConfig, events: pd.DataFrame) -> dict[str, float]:
    interactions = sessionize(events, site).interactions
    return interactions.groupby("external_id")["engaged_seconds"].sum().to_dict()


def test_engaged_time_is_credited_to_the_page_it_was_spent_on(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(10, 0), "u1", 1000, A),
        ga4_event("scroll", at(10, 1), "u1", 1000, A, engagement_msec=15_000),
        # The page view of B reports the 20.25 s spent on A since the scroll.
        ga4_event("page_view", at(10, 2), "u1", 1000, B + "?utm_source=x#top", engagement_msec=20_250),
        ga4_event("user_engagement", at(10, 5), "u1", 1000, B, engagement_msec=45_500),
        ga4_event("page_view", at(10, 6), "u1", 1000, C, referrer=B),
        ga4_event("user_engagement", at(10, 7), "u1", 1000, C, engagement_msec=4_000),
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, read.events) == {"101": 35.25, "102": 45.5, "103": 4.0}
    assert read.previous_page_credits == 1 and read.unattributed_seconds == 0
    assert read.lines_read == 6 and len(read.rejects) == 0
    views = read.events[read.events["event_name"] == "page_view"]
    assert views["engaged_increment_seconds"].eq(0).all()
    assert read.events["session_id"].eq("u1:1000").all()
    assert read.tables == {"2026-12-01": INTRADAY}


def test_a_page_view_in_the_next_window_credits_the_page_left_in_the_last(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(11, 50), "u1", 7, A),
        ga4_event("page_view", at(12, 1), "u1", 7, B, engagement_msec=30_000),  # 30 s on A
        # A session seen first here (its start on the day before): the referrer names the page.
        ga4_event("page_view", at(12, 3), "u2", 8, C, engagement_msec=12_000, referrer=A),
        # Left for the site from elsewhere: nothing on the site to credit.
        ga4_event(
            "page_view", at(12, 4), "u3", 9, C, engagement_msec=9_000, referrer="https://news.example/x"
        ),
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    first = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, first.events) == {"101": 0.0}
    second = window(site, tmp_path, at(12), at(14))
    assert seconds_by_article(site, second.events) == {"101": 42.0, "102": 0.0, "103": 0.0}
    assert second.previous_page_credits == 2 and second.unattributed_seconds == 9.0
    assert second.lines_read == 3  # the window's own records, the context not counted again
    # A site that lists no hosts: a referrer on the page view's own host is the site's.
    open_site = site.model_copy(update={"events": site.events.model_copy(update={"allowed_hosts": ()})})
    anywhere = window(open_site, tmp_path, at(12), at(14))
    assert anywhere.previous_page_credits == 2 and anywhere.unattributed_seconds == 9.0


def test_the_daily_table_replaces_the_intraday_one_and_rereading_gives_the_same_rows(site, tmp_path) -> None:
    early = [
        ga4_event("page_view", at(10, 0), "u1", 1, A),
        ga4_event("user_engagement", at(10, 2), "u1", 1, A, engagement_msec=60_000),
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, early)
    intraday = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, intraday.events) == {"101": 60.0}
    again = window(site, tmp_path, at(10), at(12))
    pd.testing.assert_frame_equal(again.events, intraday.events)

    # The daily table holds the same events and a late one; the intraday table is still there.
    late = ga4_event("user_engagement", at(11, 0), "u2", 2, A, engagement_msec=5_000)
    write_ga4_table(tmp_path, site, DAILY, DAY, [*early, late], name="000000000000.json.gz")
    write_ga4_table(tmp_path, site, DAILY, DAY, [], name="000000000001.json.gz")  # an empty shard
    daily = window(site, tmp_path, at(10), at(12))
    assert daily.tables == {"2026-12-01": DAILY}
    assert seconds_by_article(site, daily.events) == {"101": 65.0}  # not 125: nothing twice
    assert len(daily.events) == 3 and daily.duplicates == {"duplicate_in_window": 0}
    pd.testing.assert_frame_equal(daily.events.iloc[:2], intraday.events)  # the same rows, same ids


def test_malformed_records_are_quarantined_once_with_their_reason(site, tmp_path) -> None:
    good = ga4_event("page_view", at(22, 30), "u1", 1, A)
    no_params = {**good, "event_params": {"page_location": A}}
    no_location = ga4_event("page_view", at(22, 31), "u1", 1, None)
    negative = ga4_event("user_engagement", at(22, 32), "u1", 1, A, engagement_msec=-5)
    other = ga4_event("session_start", at(22, 29), "u1", 1, A)
    path = write_ga4_table(
        tmp_path, site, INTRADAY, DAY, [good, good, no_params, no_location, negative, other]
    )

    lines = gzip.decompress(path.read_bytes()).splitlines()
    no_time = b'{"event_name": "page_view", "event_params": []}'
    lines[1:1] = [b"{not json", no_time, b"[1, 2]"]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))

    last = window(site, tmp_path, at(22), at(24))
    reasons = last.rejects.set_index("line_number")["reason"].to_dict()
    assert reasons == {
        2: "invalid_json",
        3: "bad_event_timestamp",
        4: "not_a_json_object",
        6: "bad_event_params",
        7: "page_event_without_path",
        8: "bad_engagement_time",
    }
    assert last.rejects["excerpt"].str.len().gt(0).all()
    assert last.duplicates == {"duplicate_in_window": 1}
    assert last.other_events == {"session_start": 1}
    assert len(last.events) == 1
    # 3 records of the window (a copy and another event among them) and 6 lines set aside.
    assert last.lines_read == 9
    # The lines without a time belong to the window that holds the day's end only.
    earlier = window(site, tmp_path, at(20), at(22))
    assert earlier.rejects.empty and earlier.lines_read == 0


def test_a_window_across_the_property_midnight_reads_both_days(site, tmp_path) -> None:
    ga4 = site.events.ga4.model_copy(update={"timezone": "America/Chicago"})
    assert property_dates(at(4), at(6), "America/Chicago") == [DAY.date() - timedelta(days=1)]
    assert property_dates(at(5), at(7), "America/Chicago") == [DAY.date() - timedelta(days=1), DAY.date()]
    keys = {"ga4/events_20261130": ["x"]}
    assert tables_to_read(lambda folder: keys.get(folder, []), ga4, at(5), at(7)) == {
        DAY.date() - timedelta(days=1): (DAILY, "ga4/events_20261130"),
        DAY.date(): (INTRADAY, "ga4/events_intraday_20261201"),
    }


def test_integers_as_bigquery_writes_them_or_as_numbers(site) -> None:
    record = ga4_event("user_engagement", at(9), "u1", 5, A, engagement_msec=1500)
    as_numbers = {
        **record,
        "event_timestamp": int(record["event_timestamp"]),
        "event_params": [
            {"key": "page_location", "value": {"string_value": A, "int_value": None}},
            {"key": "ga_session_id", "value": {"int_value": 5}},
            {"key": "engagement_time_msec", "value": {"double_value": 1500.0}},
        ],
    }
    parsed = parse_ga4_objects([("k", orjson.dumps(record) + b"\n" + orjson.dumps(as_numbers))])
    assert parsed.rejects.empty
    rows = parsed.records
    assert rows["event_us"].nunique() == 1 and rows["ga_session_id"].tolist() == ["5", "5"]
    assert rows["engagement_msec"].tolist() == [1500.0, 1500.0]


# --- reading time where GA4 says it was spent ---------------------------------------------------


def test_time_reported_on_other_events_is_credited_to_their_page(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(10, 0), "u1", 1, A),
        # GA4 adds the engaged time since its last report to the next event, whatever it is.
        ga4_event("click", at(10, 1), "u1", 1, A, engagement_msec=12_000),
        ga4_event("file_download", at(10, 2), "u1", 1, A, engagement_msec=3_500),
        ga4_event("page_view", at(10, 3), "u1", 1, B, engagement_msec=5_000),  # 5 s more on A
        ga4_event("user_engagement", at(10, 4), "u1", 1, B, engagement_msec=8_000),
        ga4_event("form_start", at(10, 5), "u1", 1, B),  # no time: dropped, nothing to credit
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, read.events) == {"101": 20.5, "102": 8.0}
    assert read.other_events == {"click": 1, "file_download": 1, "form_start": 1}
    assert read.other_events_seconds == 15.5
    assert not read.events["event_name"].isin(["click", "file_download", "form_start"]).any()


def test_events_of_one_microsecond_are_ordered_by_the_batch_fields(site, tmp_path) -> None:
    records = []
    for n in range(8):  # several sessions: an order left to the ids would get some of them wrong
        reader = f"u{n}"
        records += [
            ga4_event("page_view", at(10, n), reader, n, A, batch=(1, 1, 0)),
            # The page view of B reports 20 s on A; B's first scroll is sent in the same
            # microsecond, after it, and reports 7 s on B.
            ga4_event("scroll", at(10, n, 30), reader, n, B, engagement_msec=7_000, batch=(2, 1, 1)),
            ga4_event("page_view", at(10, n, 30), reader, n, B, engagement_msec=20_000, batch=(2, 1, 0)),
        ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, read.events) == {"101": 160.0, "102": 56.0}


def test_a_page_view_in_another_tab_credits_the_page_its_referrer_names(site, tmp_path) -> None:
    records = [
        # Tab 1 reads A; from A the reader opens B in tab 2 and reads it 9 s there ...
        ga4_event("page_view", at(10, 0), "u1", 1, A),
        ga4_event("page_view", at(10, 1), "u1", 1, B, referrer=A),
        ga4_event("user_engagement", at(10, 2), "u1", 1, B, engagement_msec=9_000),
        # ... then goes back to tab 1 and, after 40 s more on A, follows a link to C: the
        # session's previous event is tab 2's, but C's referrer names A, seen in the session.
        ga4_event("page_view", at(10, 4), "u1", 1, C, engagement_msec=40_000, referrer=A),
        # A referrer the session has not shown (an outside page): the previous event's page.
        ga4_event("page_view", at(10, 6), "u1", 1, A, engagement_msec=6_000, referrer=HOST + "/about/"),
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, read.events) == {"101": 40.0, "102": 9.0, "103": 6.0}
    assert read.previous_page_credits == 2 and read.unattributed_seconds == 0


# --- hostile exports ------------------------------------------------------------------------------


def test_a_nul_character_keeps_pages_and_readers_apart(site, tmp_path) -> None:
    records = [
        ga4_event("user_engagement", at(10, 0), "R", 1, A, engagement_msec=30_000),
        ga4_event("user_engagement", at(10, 1), "R\0x", 2, B, engagement_msec=10_000),
        ga4_event("user_engagement", at(10, 2), "R", 1, A + "\0x", engagement_msec=26_000),
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    events = read.events.set_index("engaged_increment_seconds")
    assert events.loc[30.0, "page_path"] == "/article/101/story-101/"
    assert events.loc[26.0, "page_path"] == "/article/101/story-101/\ufffdx"
    assert events.loc[30.0, "reader_id"] == "R" and events.loc[10.0, "reader_id"] == "R\ufffdx"
    interactions = sessionize(read.events, site).interactions
    assert sorted(zip(interactions["reader_id"], interactions["external_id"], strict=True)) == [
        ("R", "101"),
        ("R\ufffdx", "102"),
    ]


def test_a_copy_serialized_again_is_the_same_event(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(10, 0), "u1", 1, A, batch=(1, 1, 0)),
        ga4_event("user_engagement", at(10, 1), "u1", 1, A, engagement_msec=25_000, batch=(1, 2, 0)),
    ]
    # A stale shard beside its rewritten copy: a field added, the params in another order.
    rewritten = [{**r, "is_active_user": True, "event_params": r["event_params"][::-1]} for r in records]
    write_ga4_table(tmp_path, site, DAILY, DAY, records, name="000000000000.json.gz")
    write_ga4_table(tmp_path, site, DAILY, DAY, rewritten, name="000000000001.json.gz")
    read = window(site, tmp_path, at(10), at(12))
    assert seconds_by_article(site, read.events) == {"101": 25.0}
    assert len(read.events) == 2 and read.duplicates == {"duplicate_in_window": 2}


def test_a_daily_table_that_vanishes_while_read_fails_the_window(site) -> None:
    listed = {"ga4/events_20261201": ["ga4/events_20261201/000000000000.json.gz"]}

    def keys_in(folder: str) -> list[str]:
        return listed.get(folder, [])

    def objects_in(folders: list[str]):
        return iter(())  # GA4 replaced the table between the listing and the reading

    with pytest.raises(GA4TableChanged, match=r"events_20261201 .*1 of its 1 files listed were gone"):
        read_ga4_window(keys_in, objects_in, site.events, at(10), at(12))


def test_implausible_engagement_is_quarantined(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(10, 0), "u1", 1, A),
        ga4_event("user_engagement", at(10, 1), "u1", 1, A, engagement_msec=9_200_000_000_000_000_000),
        ga4_event("user_engagement", at(10, 2), "u1", 1, A, engagement_msec=4 * 3600 * 1000),  # the bound
    ]
    write_ga4_table(tmp_path, site, INTRADAY, DAY, records)
    read = window(site, tmp_path, at(10), at(12))
    assert read.rejects[["line_number", "reason"]].values.tolist() == [[2, "implausible_engagement_time"]]
    assert seconds_by_article(site, read.events) == {"101": 4 * 3600.0}
    with pytest.raises(ValueError, match="max_engagement_seconds"):
        GA4Settings(max_engagement_seconds=0)


# --- a day's files parsed once for its windows ------------------------------------------------------


class KeptParses:
    """`ParsedFiles` in memory, counting what it is asked."""

    def __init__(self) -> None:
        self.kept: dict = {}

    def get(self, day, digest):
        return self.kept.get((day, digest))

    def put(self, day, digest, parsed) -> None:
        self.kept[(day, digest)] = parsed


def test_the_days_files_are_parsed_once_for_its_windows(site, tmp_path) -> None:
    records = [
        ga4_event("page_view", at(10, 0), "u1", 1, A),
        ga4_event("user_engagement", at(10, 5), "u1", 1, A, engagement_msec=30_000),
        ga4_event("page_view", at(12, 1), "u1", 1, B, engagement_msec=6_000),  # 6 s more on A
        ga4_event("user_engagement", at(12, 3), "u1", 1, B, engagement_msec=12_000),
    ]
    write_ga4_table(tmp_path, site, DAILY, DAY, records)
    bucket = EventBucket(root_dir=str(tmp_path))
    keys, objects = partial(bucket.folder_keys, site), partial(bucket.folder_objects, site)
    kept = KeptParses()

    first = read_ga4_window(keys, objects, site.events, at(10), at(12), parsed_files=kept)
    second = read_ga4_window(keys, objects, site.events, at(12), at(14), parsed_files=kept)
    assert (first.files_parsed, first.files_reused) == (1, 0)
    assert (second.files_parsed, second.files_reused) == (0, 1)
    fresh = read_ga4_window(keys, objects, site.events, at(12), at(14))
    pd.testing.assert_frame_equal(second.events, fresh.events)
    assert seconds_by_article(site, second.events) == {"101": 6.0, "102": 12.0}

    # The daily table rewritten with a late hit: its file is parsed again, and the hit counts.
    late = ga4_event("user_engagement", at(12, 30), "u2", 2, C, engagement_msec=3_000)
    write_ga4_table(tmp_path, site, DAILY, DAY, [*records, late])
    again = read_ga4_window(keys, objects, site.events, at(12), at(14), parsed_files=kept)
    assert (again.files_parsed, again.files_reused) == (1, 0)
    assert seconds_by_article(site, again.events) == {"101": 6.0, "102": 12.0, "103": 3.0}

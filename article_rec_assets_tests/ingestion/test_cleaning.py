"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (docs/contract.md, section 3), not the module's table, so that a wrong position fails.
"""

import gzip

import pandas as pd

from article_rec_assets.ingestion.cleaning import CLEAN_DTYPES, clean_window, normalize_pages
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets_tests.ingestion.lines import (
    T0_EPOCH,
    amp_line,
    amp_ping,
    eid,
    json_line,
    no_events,
    parse,
    ts,
    web,
)

# --- clean_window: duplicates ----------------------------------------------------------------


def test_duplicates_within_the_window_leave_one_row_per_event_id(city):
    window = parse_objects(
        [
            ("a", b"\n".join([json_line(1), json_line(2), json_line(1)])),
            ("b.gz", gzip.compress(json_line(1) + b"\n" + json_line(3))),
        ]
    )
    cleaned = clean_window(window, no_events(), city.events)
    assert sorted(cleaned.events["event_id"]) == [eid(1), eid(2), eid(3)]
    assert cleaned.duplicates == {"duplicate_in_window": 2, "delivered_in_earlier_window": 0}


def test_the_first_delivery_of_a_duplicate_is_kept(city):
    window = parse(
        json_line(1, collector_tstamp="2024-05-01T10:05:00Z", useragent="second"),
        json_line(1, collector_tstamp="2024-05-01T10:00:00Z", useragent="first"),
    )
    cleaned = clean_window(window, no_events(), city.events)
    assert cleaned.events["useragent"].tolist() == ["first"]
    assert cleaned.events["collector_tstamp"].tolist() == [ts("2024-05-01 10:00:00")]


def test_events_delivered_in_the_lookback_are_dropped_and_context_never_emitted(city):
    context = parse(
        json_line(1, collector_tstamp="2024-05-01T09:00:00Z"),
        json_line(1, collector_tstamp="2024-05-01T09:00:00Z"),  # a duplicate inside the context
        json_line(2, collector_tstamp="2024-05-01T09:30:00Z"),
        key="context",
    )
    window = parse_objects(
        [
            ("w1", b"\n".join([json_line(1), json_line(3), json_line(3)])),
            ("w2", json_line(4) + b"\n" + json_line(3)),
        ]
    )
    cleaned = clean_window(window, context, city.events)
    assert sorted(cleaned.events["event_id"]) == [eid(3), eid(4)]
    assert cleaned.duplicates == {"duplicate_in_window": 2, "delivered_in_earlier_window": 1}


def test_clean_window_columns_types_and_empty_inputs(city):
    cleaned = clean_window(parse(json_line(1)), no_events(), city.events)
    assert dict(cleaned.events.dtypes.astype(str)) == {
        k: str(pd.Series(dtype=v).dtype) for k, v in CLEAN_DTYPES.items()
    }
    empty = clean_window(no_events(), no_events(), city.events)
    assert empty.events.empty
    assert list(empty.events.columns) == list(CLEAN_DTYPES)
    assert empty.duplicates == {"duplicate_in_window": 0, "delivered_in_earlier_window": 0}
    # Only context: nothing is emitted.
    assert clean_window(no_events(), parse(json_line(1)), city.events).events.empty


# --- clean_window: readers, sessions, pages --------------------------------------------------


def test_reader_is_domain_userid_or_the_amp_client_id(city):
    window = parse(
        json_line(1),
        amp_line(2, "2024-05-01T10:00:00Z", client="amp-1"),
        json_line(3, domain_userid=None),
    )
    events = clean_window(window, no_events(), city.events).events.set_index("event_id")
    assert events.loc[eid(1), "reader_id"] == "reader-1"
    assert events.loc[eid(2), "reader_id"] == "amp-1"
    assert pd.isna(events.loc[eid(3), "reader_id"])


def test_sessions_are_domain_sessionid_or_inferred_after_inactivity(city):
    # amp-1: 10:00:00.7, 10:29:59 (gap < 30 min), 10:59:59 (exactly 30 min: same session),
    #        11:30:00 (30 min 1 s: a new session), 11:35:00.
    # amp-2: 10:10:00 alone. A web reader keeps its domain_sessionid.
    window = parse(
        amp_line(1, "2024-05-01T10:00:00.700Z"),
        amp_line(2, "2024-05-01T10:29:59Z"),
        amp_line(3, "2024-05-01T10:59:59Z"),
        amp_line(4, "2024-05-01T11:30:00Z"),
        amp_line(5, "2024-05-01T11:35:00Z"),
        amp_line(6, "2024-05-01T10:10:00Z", client="amp-2"),
        json_line(7, collector_tstamp="2024-05-01T12:00:00Z"),
        json_line(8, domain_sessionid=None, collector_tstamp="2024-05-01T10:00:01Z"),
    )
    events = clean_window(window, no_events(), city.events).events.set_index("event_id")
    first, second = f"amp-1:{T0_EPOCH}", f"amp-1:{T0_EPOCH + 5400}"
    assert events.loc[[eid(i) for i in range(1, 9)], "session_id"].tolist() == [
        first,
        first,
        first,
        second,
        second,
        f"amp-2:{T0_EPOCH + 600}",
        "session-1",
        f"reader-1:{T0_EPOCH + 1}",  # a web event without a session id is sessionized the same way
    ]


def test_session_timeout_comes_from_the_site(city):
    settings = city.events.model_copy(update={"session_timeout_minutes": 10})
    window = parse(
        amp_line(1, "2024-05-01T10:00:00Z"),
        amp_line(2, "2024-05-01T10:10:00Z"),  # exactly 10 min
        amp_line(3, "2024-05-01T10:20:01Z"),  # 10 min 1 s
    )
    events = clean_window(window, no_events(), settings).events
    assert events["session_id"].tolist() == [
        f"amp-1:{T0_EPOCH}",
        f"amp-1:{T0_EPOCH}",
        f"amp-1:{T0_EPOCH + 1201}",
    ]


def test_an_inferred_session_may_start_in_the_lookback(city):
    context = parse(amp_line(1, "2024-05-01T09:50:00Z"), key="context")
    window = parse(amp_line(2, "2024-05-01T10:10:00Z"), amp_line(3, "2024-05-01T10:15:00Z"))
    events = clean_window(window, context, city.events).events
    assert events["event_id"].tolist() == [eid(2), eid(3)]
    assert events["session_id"].tolist() == [f"amp-1:{T0_EPOCH - 600}"] * 2


def test_normalize_pages():
    hosts = pd.Series(
        [
            "democitypaper.example",
            "DemoCityPaper.Example",
            "democitypaper-example.cdn.ampproject.org",
            "www-google-com.cdn.ampproject.org",
            "democitypaper.example",
            "democitypaper.example",
            "democitypaper.example",
            "cdn.example",
            None,
        ],
        dtype="string",
    )
    paths = pd.Series(
        [
            "/article/1/a/?utm_source=x#comments",
            "/article/1/a/amp",
            "/c/s/democitypaper.example/article/1/a/amp/",
            "/v/s/DemoCityPaper.example/article/2/b/?amp_js_v=0.1#referrer=x",
            "/article/3/champ/",
            "/amp/",
            "/article/4/d/amp/page/",
            "/c/s/democitypaper.example",
            None,
        ],
        dtype="string",
    )
    host, path = normalize_pages(hosts, paths)
    assert host.tolist()[:8] == [
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
        "democitypaper.example",
    ]
    assert pd.isna(host.iloc[8])
    assert path.tolist()[:8] == [
        "/article/1/a/",
        "/article/1/a/",
        "/article/1/a/",
        "/article/2/b/",
        "/article/3/champ/",  # not an /amp suffix
        "/",
        "/article/4/d/amp/page/",  # /amp only at the end
        "/",
    ]


def test_clean_window_normalizes_pages(city):
    window = parse(
        json_line(
            1,
            page_urlhost="democitypaper-example.cdn.ampproject.org",
            page_urlpath="/c/s/democitypaper.example/article/1/a/amp/",
        ),
        json_line(
            2,
            page_urlhost=None,
            page_urlpath=None,
            page_url="https://WWW.DemoCityPaper.example/article/2/b/amp?x=1",
        ),
    )
    events = clean_window(window, no_events(), city.events).events
    assert events[["page_host", "page_path"]].values.tolist() == [
        ["democitypaper.example", "/article/1/a/"],
        ["www.democitypaper.example", "/article/2/b/"],
    ]


# --- determinism ---------------------------------------------------------------------------


def test_rerunning_clean_window_and_sessionize_gives_identical_frames(city):
    context = parse(
        web(1, "2024-05-01T09:59:50Z", "page_view", domain_userid="r1"),
        web(2, "2024-05-01T09:59:55Z", domain_userid="r1"),
        amp_line(3, "2024-05-01T09:40:00Z"),
        key="context",
    )
    window = parse_objects(
        [
            (
                "w1",
                b"\n".join(
                    [web(4, "2024-05-01T10:00:05Z", domain_userid="r1"), web(2, "2024-05-01T09:59:55Z")]
                ),
            ),
            (
                "w2.gz",
                gzip.compress(
                    b"\n".join(
                        [
                            amp_ping(5, "2024-05-01T10:05:00Z", 12),
                            amp_ping(6, "2024-05-01T10:05:10Z", 20),
                            web(
                                7,
                                "2024-05-01T10:06:00Z",
                                pv="pv-9",
                                domain_userid="r2",
                                page_urlpath="/article/2/b/",
                            ),
                        ]
                    )
                ),
            ),
        ]
    )
    runs = []
    for _ in range(2):
        cleaned = clean_window(window, context, city.events)
        runs.append((cleaned, sessionize(cleaned.events, city)))
    (first_clean, first_sessions), (second_clean, second_sessions) = runs
    pd.testing.assert_frame_equal(first_clean.events, second_clean.events)
    pd.testing.assert_frame_equal(first_sessions.interactions, second_sessions.interactions)
    assert (
        first_clean.duplicates
        == second_clean.duplicates
        == {
            "duplicate_in_window": 0,
            "delivered_in_earlier_window": 1,
        }
    )
    assert first_sessions.filtered == second_sessions.filtered
    assert len(first_sessions.interactions) == 3

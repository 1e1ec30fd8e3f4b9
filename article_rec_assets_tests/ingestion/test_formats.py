"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (docs/contract.md, section 3), not the module's table, so that a wrong position fails.
"""

import gzip

import orjson
import pandas as pd

from article_rec_assets.ingestion.parsing import PARSED_COLUMNS, parse_objects
from article_rec_assets_tests.ingestion.lines import (
    A1,
    AMP_ID,
    AMP_PAGE_PING,
    AMP_WEB_PAGE,
    HOST,
    IAB,
    UA,
    WEB_PAGE,
    eid,
    iglu,
    json_line,
    parse,
    rejected,
    ts,
    tsv_contexts,
    tsv_line,
    tsv_unstruct,
)
from article_rec_assets_tests.support import (
    SNOWPLOW_SAMPLE,
    TSV_FIELD_COUNT,
    shared_data_or_skip,
)

# --- JSON lines ------------------------------------------------------------------------------


def test_json_line_fields_and_types():
    line = json_line(
        1,
        app_id="city",
        platform="web",
        collector_tstamp="2024-05-01T10:00:05.250Z",
        dvce_created_tstamp="2024-05-01T10:00:04Z",
        page_url="https://democitypaper.example/article/101/first-story/?utm=x",
        **{WEB_PAGE: [{"id": "pv-1"}], "unknown_field": {"nested": [1, 2]}},
    )
    parsed = parse(line, key="bucket/a.jsonl")
    assert parsed.objects_read == 1
    assert parsed.lines_read == 1
    assert parsed.rejects.empty
    assert parsed.reject_counts == {}
    assert set(PARSED_COLUMNS) <= set(parsed.events.columns)
    row = parsed.events.iloc[0]
    assert row["event_id"] == "00000000-0000-0000-0000-000000000001"
    assert row["event_name"] == "page_view"
    assert row["app_id"] == "city"
    assert row["platform"] == "web"
    assert row["domain_userid"] == "reader-1"
    assert row["domain_sessionid"] == "session-1"
    assert row["page_view_id"] == "pv-1"
    assert row["page_urlhost"] == HOST
    assert row["page_urlpath"] == A1
    assert row["useragent"] == UA
    assert pd.isna(row["amp_client_id"])
    assert pd.isna(row["iab_spider"])
    assert pd.isna(row["amp_engaged_seconds"])
    assert row["collector_tstamp"] == ts("2024-05-01 10:00:05.250")
    assert row["dvce_created_tstamp"] == ts("2024-05-01 10:00:04")
    assert row["_source"] == "bucket/a.jsonl"
    assert row["_line"] == 1
    assert str(parsed.events["collector_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert str(parsed.events["dvce_created_tstamp"].dtype) == "datetime64[ns, UTC]"


def test_json_lines_keep_their_line_order_and_device_time_falls_back_to_collector_time():
    parsed = parse(
        json_line(2, collector_tstamp="2024-05-01T10:00:05.250Z", dvce_created_tstamp="2024-05-01T10:00:04Z"),
        json_line(1, collector_tstamp="2024-05-01T10:00:00Z"),
    )
    assert parsed.lines_read == 2
    events = parsed.events
    assert events["event_id"].tolist() == [eid(2), eid(1)]
    assert events["_line"].tolist() == [1, 2]
    assert events["collector_tstamp"].tolist() == [ts("2024-05-01 10:00:05.250"), ts("2024-05-01 10:00:00")]
    # eid(1) has no device time: the collector time stands in.
    assert events["dvce_created_tstamp"].tolist() == [ts("2024-05-01 10:00:04"), ts("2024-05-01 10:00:00")]


def test_json_timestamps_with_offsets_are_converted_to_utc():
    events = parse(json_line(1, collector_tstamp="2024-05-01T12:00:00+02:00")).events
    assert events["collector_tstamp"].tolist() == [ts("2024-05-01 10:00:00")]


def test_event_name_falls_back_to_event():
    events = parse(json_line(1, event_name=None, event="page_ping")).events
    assert events["event_name"].tolist() == ["page_ping"]


def test_json_contexts_amp_ids_spiders_and_engaged_time():
    amp = {
        "domain_userid": None,
        "domain_sessionid": None,
        AMP_ID: [{"ampClientId": "amp-1", "userId": None}],
        AMP_WEB_PAGE: [{"ampPageViewId": "apv-1"}],
    }
    spider = {"spiderOrRobot": True, "category": "SPIDER_OR_ROBOT", "reason": "FAILED_UA_INCLUDE"}
    parsed = parse(
        json_line(1, **{IAB: [spider], WEB_PAGE: [{"id": "pv-1"}, {"id": "pv-other"}]}),
        json_line(2, **{IAB: [{**spider, "spiderOrRobot": False}]}),
        json_line(3, event_name="amp_page_view", **amp),
        json_line(
            4, event_name="amp_page_ping", **amp, **{AMP_PAGE_PING: {"totalEngagedTime": 12.5, "x": 1}}
        ),
        json_line(5, **{WEB_PAGE: []}),
    )
    assert parsed.rejects.empty
    events = parsed.events.set_index("event_id")
    assert events["page_view_id"].fillna("<none>").tolist()[:4] == ["pv-1", "<none>", "apv-1", "apv-1"]
    assert pd.isna(events.loc[eid(5), "page_view_id"])  # an empty context list
    assert events["iab_spider"].tolist()[:2] == [True, False]
    assert events["iab_spider"].isna().tolist()[2:] == [True, True, True]
    assert events.loc[eid(3), "amp_client_id"] == "amp-1"
    assert pd.isna(events.loc[eid(3), "domain_userid"])
    assert events.loc[eid(4), "amp_engaged_seconds"] == 12.5
    assert events["amp_engaged_seconds"].isna().tolist() == [True, True, True, False, True]


def test_host_and_path_come_from_page_url_when_missing():
    parsed = parse(
        json_line(
            1,
            page_urlhost=None,
            page_urlpath=None,
            page_url="https://www.democitypaper.example:8443/article/2/b/?x=1#top",
        ),
        json_line(
            2, page_urlhost="explicit.example", page_urlpath="/explicit/", page_url="https://o.example/p"
        ),
        json_line(3, page_urlhost=None, page_url="https://other.example/article/3/c/"),
        json_line(4, page_urlpath=None, page_url="http://x.example/article/4/d"),
    )
    assert parsed.rejects.empty
    events = parsed.events.set_index("event_id")
    assert events.loc[eid(1), ["page_urlhost", "page_urlpath"]].tolist() == [
        "www.democitypaper.example",
        "/article/2/b/",
    ]
    assert events.loc[eid(2), ["page_urlhost", "page_urlpath"]].tolist() == ["explicit.example", "/explicit/"]
    assert events.loc[eid(3), ["page_urlhost", "page_urlpath"]].tolist() == ["other.example", A1]
    assert events.loc[eid(4), ["page_urlhost", "page_urlpath"]].tolist() == [HOST, "/article/4/d"]


# --- enriched TSV ----------------------------------------------------------------------------


def test_tsv_fields_are_taken_by_position_and_timestamps_normalised():
    line = tsv_line(
        app_id="site",
        platform="web",
        collector_tstamp="2021-10-14 13:54:40.027000001",
        dvce_created_tstamp="2021-10-14 13:54:39",
        event="page_view",
        event_id=eid(7),
        domain_userid="reader",
        page_url="https://democitypaper.example/article/1/a/",
        page_urlhost="democitypaper.example",
        page_urlpath="/article/1/a/",
        contexts=tsv_contexts(
            iglu("com.snowplowanalytics.snowplow/client_session", {"sessionId": "x"}),
            iglu("com.snowplowanalytics.snowplow/web_page", {"id": "pv-7"}),
        ),
        useragent=UA,
        domain_sessionid="session",
        derived_tstamp="2021-10-14 13:54:38",
        event_name="page_view",
    )
    parsed = parse(line)
    assert parsed.rejects.empty
    row = parsed.events.iloc[0]
    assert row["event_id"] == eid(7)
    assert row["app_id"] == "site"
    assert row["platform"] == "web"
    assert row["event_name"] == "page_view"
    assert row["domain_userid"] == "reader"
    assert row["domain_sessionid"] == "session"
    assert row["page_urlhost"] == "democitypaper.example"
    assert row["page_urlpath"] == "/article/1/a/"
    assert row["useragent"] == UA
    assert row["page_view_id"] == "pv-7"  # from the web_page context inside the contexts JSON
    # Space -> "T", nanoseconds cut to microseconds.
    assert row["collector_tstamp"] == ts("2021-10-14 13:54:40.027")
    assert row["dvce_created_tstamp"] == ts("2021-10-14 13:54:39")
    # Empty TSV fields are nulls.
    assert pd.isna(row["amp_client_id"])
    assert pd.isna(row["iab_spider"])


def test_tsv_amp_contexts_unstruct_event_and_spiders():
    line = tsv_line(
        collector_tstamp="2024-05-01 10:00:00.123456789",
        event="unstruct",
        event_name="amp_page_ping",
        event_id=eid(8),
        page_urlhost="democitypaper-example.cdn.ampproject.org",
        page_urlpath="/c/s/democitypaper.example/article/1/a/amp/",
        contexts=tsv_contexts(
            iglu("dev.amp.snowplow/amp_id", {"ampClientId": "amp-9"}),
            iglu("dev.amp.snowplow/amp_web_page", {"ampPageViewId": "apv-9"}),
            iglu("com.iab.snowplow/spiders_and_robots", {"spiderOrRobot": True, "category": "BROWSER"}),
        ),
        unstruct_event=tsv_unstruct(iglu("dev.amp.snowplow/amp_page_ping", {"totalEngagedTime": 7})),
        useragent=UA,
    )
    row = parse(line).events.iloc[0]
    assert row["event_name"] == "amp_page_ping"
    assert row["amp_client_id"] == "amp-9"
    assert row["page_view_id"] == "apv-9"
    assert bool(row["iab_spider"]) is True
    assert row["amp_engaged_seconds"] == 7.0
    assert pd.isna(row["domain_userid"])
    assert row["collector_tstamp"] == ts("2024-05-01 10:00:00.123456")
    assert row["dvce_created_tstamp"] == ts("2024-05-01 10:00:00.123456")


def test_tsv_with_unreadable_contexts_keeps_the_event():
    line = tsv_line(
        event="page_view",
        event_id=eid(1),
        collector_tstamp="2024-05-01 10:00:00",
        page_urlpath=A1,
        contexts="{no",
    )
    parsed = parse(line)
    assert parsed.rejects.empty
    assert parsed.events["event_id"].tolist() == [eid(1)]
    assert parsed.events["page_view_id"].isna().all()


def test_tsv_event_name_falls_back_to_event():
    line = tsv_line(
        event="page_view", event_id=eid(1), collector_tstamp="2024-05-01 10:00:00", page_urlpath=A1
    )
    assert parse(line).events["event_name"].tolist() == ["page_view"]


def test_tsv_with_wrong_field_count():
    lines = [
        b"a\tb\tc",
        "\t".join(["x"] * (TSV_FIELD_COUNT + 1)).encode(),
        "\t".join(["x"] * (TSV_FIELD_COUNT - 1)).encode(),
    ]
    parsed = parse(*lines)
    assert rejected(parsed) == [[1, "wrong_field_count"], [2, "wrong_field_count"], [3, "wrong_field_count"]]
    assert parsed.rejects["excerpt"].tolist() == [line.decode() for line in lines]
    assert parsed.events.empty
    assert parsed.lines_read == 3


def test_tsv_with_131_fields_but_no_event_id():
    parsed = parse(tsv_line(event="page_view", collector_tstamp="2021-10-14 13:54:40", page_urlpath=A1))
    assert rejected(parsed) == [[1, "missing_event_id"]]


def test_the_same_event_as_json_and_as_tsv_parses_the_same():
    common = {"event_id": eid(3), "domain_userid": "r", "domain_sessionid": "s", "useragent": UA}
    as_json = orjson.dumps(
        {
            **common,
            "event_name": "page_ping",
            "app_id": "city",
            "platform": "web",
            "collector_tstamp": "2024-05-01T10:00:05.123Z",
            "dvce_created_tstamp": "2024-05-01T10:00:04.5Z",
            "page_urlhost": HOST,
            "page_urlpath": A1,
            WEB_PAGE: [{"id": "pv-3"}],
            IAB: [{"spiderOrRobot": False}],
        }
    )
    as_tsv = tsv_line(
        **common,
        event="page_ping",
        event_name="page_ping",
        app_id="city",
        platform="web",
        collector_tstamp="2024-05-01 10:00:05.123",
        dvce_created_tstamp="2024-05-01 10:00:04.500",
        page_urlhost=HOST,
        page_urlpath=A1,
        contexts=tsv_contexts(
            iglu("com.snowplowanalytics.snowplow/web_page", {"id": "pv-3"}),
            iglu("com.iab.snowplow/spiders_and_robots", {"spiderOrRobot": False}),
        ),
    )
    from_json = parse(as_json).events[list(PARSED_COLUMNS)]
    from_tsv = parse(as_tsv).events[list(PARSED_COLUMNS)]
    pd.testing.assert_frame_equal(from_json, from_tsv, check_dtype=False)


# --- the real Snowplow enriched TSV sample ---------------------------------------------------


def test_real_snowplow_tsv_sample_gives_48_events_and_rejects_lines_1_and_2():
    parsed = parse_objects([("sample.tsv", shared_data_or_skip(SNOWPLOW_SAMPLE).read_bytes())])

    assert parsed.objects_read == 1
    assert parsed.lines_read == 50
    assert len(parsed.events) == 48
    assert parsed.reject_counts == {"wrong_field_count": 2}
    assert parsed.rejects["line_number"].tolist() == [1, 2]
    assert parsed.rejects["reason"].tolist() == ["wrong_field_count", "wrong_field_count"]
    assert parsed.rejects["source"].tolist() == ["sample.tsv", "sample.tsv"]
    # The excerpt is the start of the rejected line (line 1 starts with an empty app_id, then "web").
    assert parsed.rejects["excerpt"].iloc[0].startswith("\tweb\t2021-10-14 13:54:45.811000001\t")
    assert all(len(e) == 500 for e in parsed.rejects["excerpt"])  # both lines are longer than 500

    events = parsed.events
    assert events["_line"].tolist() == list(range(3, 51))
    assert events["event_id"].is_unique
    assert events["event_name"].value_counts().to_dict() == {"page_view": 30, "link_click": 18}
    assert set(events["app_id"]) == {"spirit-walk"}
    assert set(events["platform"]) == {"web"}
    # Every event carries a web_page context in its contexts JSON: 48 distinct page view ids.
    assert events["page_view_id"].notna().all()
    assert events["page_view_id"].nunique() == 48


def test_real_snowplow_tsv_sample_field_values():
    events = parse_objects(
        [("sample.tsv", shared_data_or_skip(SNOWPLOW_SAMPLE).read_bytes())]
    ).events.set_index("event_id")

    # Line 3: collector time 2021-10-15 09:05:29.037054266 (cut to microseconds), no device time,
    # derived_tstamp 2021-09-27 01:15:51.334000001, web_page context id 34626d28-....
    row = events.loc["56e35206-12f4-46a9-b1b2-042b19876956"]
    assert row["_line"] == 3
    assert row["collector_tstamp"] == ts("2021-10-15 09:05:29.037054")
    assert row["dvce_created_tstamp"] == ts("2021-09-27 01:15:51.334")
    assert row["page_view_id"] == "34626d28-d755-4835-a508-e07a815465e0"
    assert row["page_urlhost"] == "n.fr"
    assert row["page_urlpath"] == "x9undfqbhicntzV"
    assert row["domain_userid"] == "3d8103fa-989c-43ec-a526-099fd0c76c5b"
    assert row["domain_sessionid"] == "82ef7248-08f8-4b48-a8f4-cec0f35c4e5c"
    assert row["event_name"] == "page_view"
    assert row["useragent"].startswith("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_5)")

    # Line 6: an unstruct event whose event_name (position 126) is link_click.
    row = events.loc["c0ff6a45-1826-479f-9efe-1ac1f10948d5"]
    assert row["_line"] == 6
    assert row["event_name"] == "link_click"
    assert row["page_view_id"] == "4217cefa-41ff-4973-bf16-e864ad6484c3"

    # Line 50: collector 2021-09-17 09:05:28.590000001, derived 2021-10-15 09:05:28.590.
    row = events.loc["67e30c3f-7a83-40c2-a9c1-a5c9e7770bf6"]
    assert row["_line"] == 50
    assert row["collector_tstamp"] == ts("2021-09-17 09:05:28.590")
    assert row["dvce_created_tstamp"] == ts("2021-10-15 09:05:28.590")
    assert row["page_view_id"] == "f9d78a22-b0e4-4f10-88e9-2199880baeb2"


def test_real_sample_gzipped_and_split_in_two_objects_gives_the_same_events():
    lines = shared_data_or_skip(SNOWPLOW_SAMPLE).read_bytes().split(b"\n")
    first, second = b"\n".join(lines[:20]), b"\n".join(lines[20:])
    parsed = parse_objects([("a.gz", gzip.compress(first)), ("b", second)])
    whole = parse_objects([("sample.tsv", shared_data_or_skip(SNOWPLOW_SAMPLE).read_bytes())])
    assert parsed.lines_read == 50
    assert rejected(parsed) == [[1, "wrong_field_count"], [2, "wrong_field_count"]]
    columns = list(PARSED_COLUMNS)
    pd.testing.assert_frame_equal(parsed.events[columns], whole.events[columns])


# --- JSON and TSV together -------------------------------------------------------------------


def test_json_and_tsv_lines_in_one_object():
    tsv = tsv_line(
        event="page_view",
        event_id=eid(2),
        collector_tstamp="2024-05-01 09:00:00.123456789",
        page_url="https://democitypaper.example/article/2/b/",
        contexts=tsv_contexts(iglu("com.snowplowanalytics.snowplow/web_page", {"id": "pv-tsv"})),
    )
    data = json_line(1, **{WEB_PAGE: [{"id": "pv-json"}]}) + b"\n" + tsv + b"\n" + json_line(3)
    parsed = parse_objects([("mixed", data)])
    assert parsed.rejects.empty
    assert parsed.lines_read == 3
    events = parsed.events.sort_values("_line")
    assert events["event_id"].tolist() == [eid(1), eid(2), eid(3)]
    assert events["_line"].tolist() == [1, 2, 3]
    assert events["collector_tstamp"].tolist() == [
        ts("2024-05-01 10:00:00"),
        ts("2024-05-01 09:00:00.123456"),
        ts("2024-05-01 10:00:00"),
    ]
    # The TSV line has only `event`: it becomes the event name; host and path come from page_url.
    assert events["event_name"].tolist() == ["page_view", "page_view", "page_view"]
    assert events["page_urlhost"].tolist() == [HOST, HOST, HOST]
    assert events["page_urlpath"].tolist() == [A1, "/article/2/b/", A1]
    assert events["page_view_id"].tolist()[:2] == ["pv-json", "pv-tsv"]

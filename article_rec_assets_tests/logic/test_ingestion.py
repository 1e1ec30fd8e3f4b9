"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (CONTRACT.md section 2), not the module's table, so that a wrong position fails.
"""

import gzip
import uuid
import zlib

import orjson
import pandas as pd
import pytest

from article_rec_assets.logic.ingestion import (
    CLEAN_DTYPES,
    PARSED_COLUMNS,
    ParsedEvents,
    clean_window,
    complete_lines,
    decompress,
    gunzip_prefix,
    normalize_pages,
    parse_objects,
)
from article_rec_assets.logic.sessions import sessionize
from article_rec_assets.sites import SiteConfig, load_sites
from article_rec_assets_tests.conftest import (
    CONTRACT_TSV_POSITIONS,
    SNOWPLOW_SAMPLE,
    TSV_FIELD_COUNT,
    shared_data_or_skip,
)

HOST = "democitypaper.example"
A1 = "/article/101/first-story/"
# 2024-05-01T10:00:00Z in epoch seconds (2024-05-01T00:00:00Z is 1714521600).
T0_EPOCH = 1714557600

# Positions in the enriched TSV, from the contract (page_urlhost: Snowplow's canonical position).
TSV_POS = CONTRACT_TSV_POSITIONS
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB = "contexts_com_iab_snowplow_spiders_and_robots_1"
UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15"
)


def eid(n: int) -> str:
    """A valid event id (a UUID) numbered n: eid(1) == "00000000-0000-0000-0000-000000000001"."""
    return str(uuid.UUID(int=n))


def json_line(n: int = 1, **fields: object) -> bytes:
    """A JSON line as Snowplow's analytics SDKs write it (a page view unless told); None drops a key."""
    record: dict[str, object] = {
        "event_id": eid(n),
        "event_name": "page_view",
        "collector_tstamp": "2024-05-01T10:00:00Z",
        "domain_userid": "reader-1",
        "domain_sessionid": "session-1",
        "page_urlhost": HOST,
        "page_urlpath": A1,
        "useragent": UA,
    }
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def iglu(vendor_name: str, data: dict) -> dict:
    return {"schema": f"iglu:{vendor_name}/jsonschema/1-0-0", "data": data}


def tsv_contexts(*items: dict) -> str:
    return orjson.dumps(iglu("com.snowplowanalytics.snowplow/contexts", list(items))).decode()


def tsv_unstruct(item: dict) -> str:
    return orjson.dumps(iglu("com.snowplowanalytics.snowplow/unstruct_event", item)).decode()


def tsv_line(**fields: str) -> bytes:
    values = [""] * TSV_FIELD_COUNT
    for name, value in fields.items():
        values[TSV_POS[name]] = value
    return "\t".join(values).encode()


def parse(*lines: bytes, key: str = "k", **kwargs) -> ParsedEvents:
    return parse_objects([(key, b"\n".join(lines))], **kwargs)


def rejected(parsed: ParsedEvents) -> list[list]:
    return parsed.rejects[["line_number", "reason"]].values.tolist()


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def no_events() -> ParsedEvents:
    return parse_objects([])


CITY_EVENTS = load_sites()["demo-city-paper"].events


@pytest.fixture(scope="module")
def city() -> SiteConfig:
    return load_sites()["demo-city-paper"]


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


# --- quarantine ------------------------------------------------------------------------------

PAGE_WITHOUT_PATH = {"page_urlpath": None, "page_url": None}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"event_id": "broken"', "invalid_json"),
        (b'{"event_id": "x"} trailing', "invalid_json"),
        (b"only\ttwo", "wrong_field_count"),
        (b"\xff\xfe not utf-8", "undecodable_bytes"),
        (json_line(9, event_id=None), "missing_event_id"),
        (json_line(9, event_id="e9"), "malformed_event_id"),
        (json_line(9, event_id=12345), "malformed_event_id"),
        (json_line(9, event_id=eid(9)[:-1]), "malformed_event_id"),
        (json_line(9, collector_tstamp=None), "missing_timestamp"),
        (json_line(9, collector_tstamp="not a time"), "unparseable_timestamp"),
        (json_line(9, collector_tstamp="2024-05-01T11:00:00.001Z"), "timestamp_in_future"),
        (json_line(9, event_name=None), "missing_event_name"),
        (json_line(9, **PAGE_WITHOUT_PATH), "page_event_without_path"),
        (json_line(9, event_name="page_ping", **PAGE_WITHOUT_PATH), "page_event_without_path"),
        (json_line(9, event_name="amp_page_view", **PAGE_WITHOUT_PATH), "page_event_without_path"),
        (json_line(9, event_name="amp_page_ping", **PAGE_WITHOUT_PATH), "page_event_without_path"),
        (json_line(9, page_urlpath="", page_url=None), "page_event_without_path"),
        (
            tsv_line(event="page_view", event_id="e9", collector_tstamp="2024-05-01 10:00:00"),
            "malformed_event_id",
        ),
        (tsv_line(event="page_view", event_id=eid(9), collector_tstamp="yesterday"), "unparseable_timestamp"),
        (tsv_line(event="page_view", event_id=eid(9), page_urlpath=A1), "missing_timestamp"),
        (tsv_line(event_id=eid(9), collector_tstamp="2024-05-01 10:00:00"), "missing_event_name"),
        (
            tsv_line(event="page_ping", event_id=eid(9), collector_tstamp="2024-05-01 10:00:00"),
            "page_event_without_path",
        ),
    ],
)
def test_a_bad_line_is_quarantined_and_the_good_lines_kept(bad, reason):
    parsed = parse(
        json_line(1), bad, json_line(2), key="bucket/key.jsonl", received_before=ts("2024-05-01 11:00:00")
    )
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert parsed.events["_line"].tolist() == [1, 3]
    assert parsed.rejects.to_dict("records") == [
        {
            "source": "bucket/key.jsonl",
            "line_number": 2,
            "reason": reason,
            "excerpt": bad.decode("utf-8", "replace"),
        }
    ]
    assert parsed.reject_counts == {reason: 1}
    assert parsed.lines_read == 3


def test_a_json_value_that_is_not_an_object_is_named_as_such():
    """Only a line starting with `{` is JSON (contract), so an array, a bare string or a number is
    not an event; being valid JSON, it is quarantined as not_a_json_object rather than as a TSV
    line with the wrong field count, which a line of plain text still is."""
    parsed = parse(json_line(1), b'[{"event_id": "x"}]', b'"a string"', b"42", b"plain text")
    assert rejected(parsed) == [
        [2, "not_a_json_object"],
        [3, "not_a_json_object"],
        [4, "not_a_json_object"],
        [5, "wrong_field_count"],
    ]
    assert parsed.events["event_id"].tolist() == [eid(1)]


def test_an_empty_event_id_is_missing():
    """JSON leaves empty fields out and TSV's empty field is null: an empty id is a missing id."""
    parsed = parse(json_line(1), json_line(2, event_id=""))
    assert rejected(parsed) == [[2, "missing_event_id"]]


def test_events_without_a_page_are_kept_when_they_are_not_page_events():
    parsed = parse(
        json_line(1, event_name="link_click", page_urlhost=None, **PAGE_WITHOUT_PATH),
        json_line(2, event_name="unstruct", page_urlhost=None, **PAGE_WITHOUT_PATH),
    )
    assert parsed.rejects.empty
    assert parsed.events["event_name"].tolist() == ["link_click", "unstruct"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event_id": None, "event_name": None, "collector_tstamp": None}, "missing_event_id"),
        ({"event_id": "bad", "event_name": None, "collector_tstamp": None}, "malformed_event_id"),
        ({"event_name": None, "collector_tstamp": "nope"}, "missing_event_name"),
        ({"collector_tstamp": None, **PAGE_WITHOUT_PATH}, "missing_timestamp"),
        ({"collector_tstamp": "nope", **PAGE_WITHOUT_PATH}, "unparseable_timestamp"),
        ({"collector_tstamp": "2024-05-02T00:00:00Z", **PAGE_WITHOUT_PATH}, "timestamp_in_future"),
    ],
)
def test_the_most_basic_problem_of_a_line_is_the_one_reported(fields, reason):
    parsed = parse(json_line(1, **fields), received_before=ts("2024-05-01 11:00:00"))
    assert rejected(parsed) == [[1, reason]]


def test_timestamp_in_future_boundary():
    lines = [
        json_line(1, collector_tstamp="2024-05-01T11:00:00Z"),  # exactly the bound: accepted
        json_line(2, collector_tstamp="2024-05-01T11:00:00.001Z"),
        json_line(3, collector_tstamp="2024-05-01T13:00:00+02:00"),  # 11:00 UTC: accepted
        json_line(4, collector_tstamp="2030-01-01T00:00:00Z"),
    ]
    parsed = parse(*lines, received_before=ts("2024-05-01 11:00:00"))
    assert parsed.events["event_id"].tolist() == [eid(1), eid(3)]
    assert rejected(parsed) == [[2, "timestamp_in_future"], [4, "timestamp_in_future"]]
    # Without a bound nothing is in the future.
    assert parse(*lines).rejects.empty


def test_bad_lines_are_set_aside_with_reason_line_number_and_excerpt():
    lines = [
        json_line(1),  # 1
        b'{"event_id": "broken"',  # 2 invalid json
        b'{"event_name": "page_view", "collector_tstamp": "2024-05-01T10:00:00Z"}',  # 3 no event_id
        b"\xff\xfe not utf-8",  # 4
        b"",  # 5 blank: skipped, not counted
        json_line(2),  # 6
        b"only\ttwo",  # 7 TSV with 2 fields
    ]
    parsed = parse_objects([("bucket/key.jsonl", b"\n".join(lines))])

    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert parsed.events["_line"].tolist() == [1, 6]
    assert parsed.lines_read == 6
    assert rejected(parsed) == [
        [2, "invalid_json"],
        [3, "missing_event_id"],
        [4, "undecodable_bytes"],
        [7, "wrong_field_count"],
    ]
    assert set(parsed.rejects["source"]) == {"bucket/key.jsonl"}
    assert parsed.rejects["excerpt"].tolist() == [
        '{"event_id": "broken"',
        '{"event_name": "page_view", "collector_tstamp": "2024-05-01T10:00:00Z"}',
        "\ufffd\ufffd not utf-8",
        "only\ttwo",
    ]
    assert parsed.reject_counts == {
        "invalid_json": 1,
        "missing_event_id": 1,
        "undecodable_bytes": 1,
        "wrong_field_count": 1,
    }
    assert str(parsed.rejects["line_number"].dtype) == "int64"


def test_rejects_are_listed_by_source_and_line():
    parsed = parse_objects([("b", b"{bad\n" + json_line(1) + b"\n{bad"), ("a", json_line(2) + b"\nx\ty")])
    assert parsed.rejects[["source", "line_number", "reason"]].values.tolist() == [
        ["a", 2, "wrong_field_count"],
        ["b", 1, "invalid_json"],
        ["b", 3, "invalid_json"],
    ]
    assert sorted(parsed.events["event_id"]) == [eid(1), eid(2)]


def test_excerpt_is_the_first_500_characters_of_the_line():
    invalid = b'{"event_id": "' + b"x" * 1000
    wrong_fields = "\t".join(["abc"] * 200).encode()
    no_name = json_line(3, event_name=None, useragent="y" * 1000)
    multibyte = json_line(4, event_name=None, useragent="é" * 1000)  # 2 bytes a character
    parsed = parse(invalid, wrong_fields, no_name, multibyte)
    assert rejected(parsed) == [
        [1, "invalid_json"],
        [2, "wrong_field_count"],
        [3, "missing_event_name"],
        [4, "missing_event_name"],
    ]
    excerpts = parsed.rejects["excerpt"].tolist()
    assert excerpts == [
        invalid.decode()[:500],
        wrong_fields.decode()[:500],
        no_name.decode()[:500],
        multibyte.decode()[:500],
    ]
    assert [len(e) for e in excerpts] == [500, 500, 500, 500]


def test_a_bad_line_does_not_change_how_the_good_lines_of_its_object_parse():
    """pyarrow reads a clean object whole; with one bad line the object is read line by line. Both
    ways must give the same events."""
    good = [
        json_line(
            1,
            dvce_created_tstamp="2024-05-01T09:59:59.5Z",
            **{WEB_PAGE: [{"id": "pv-1"}], IAB: [{"spiderOrRobot": False, "category": "BROWSER"}]},
        ),
        json_line(
            2,
            event_name="amp_page_ping",
            domain_userid=None,
            **{
                AMP_ID: [{"ampClientId": "amp-1"}],
                AMP_WEB_PAGE: [{"ampPageViewId": "apv-1"}],
                AMP_PAGE_PING: {"totalEngagedTime": 30},
            },
        ),
        json_line(3, page_urlhost=None, page_urlpath=None, page_url="https://democitypaper.example/a/?q"),
        json_line(4, event_name="link_click", useragent=None, **{IAB: []}),
    ]
    clean = parse(*good).events
    with_bad = parse(good[0], good[1], b"{oops", good[2], good[3]).events
    assert with_bad["_line"].tolist() == [1, 2, 4, 5]
    columns = list(PARSED_COLUMNS)
    pd.testing.assert_frame_equal(clean[columns], with_bad[columns], check_dtype=False)


def test_unparseable_device_time_falls_back_to_collector_time():
    parsed = parse(
        json_line(1),
        json_line(2, collector_tstamp="not a time"),
        json_line(3, dvce_created_tstamp="yesterday-ish", collector_tstamp="2024-05-01T11:00:00Z"),
    )
    assert parsed.events["event_id"].tolist() == [eid(1), eid(3)]
    assert parsed.rejects[["source", "line_number", "reason"]].values.tolist() == [
        ["k", 2, "unparseable_timestamp"]
    ]
    assert parsed.reject_counts == {"unparseable_timestamp": 1}
    # A bad device time is not fatal: the collector time stands in.
    bad_device = parsed.events.set_index("event_id").loc[eid(3)]
    assert bad_device["dvce_created_tstamp"] == ts("2024-05-01 11:00:00")


def test_crlf_line_endings_and_blank_lines_keep_line_numbers():
    data = json_line(1) + b"\r\n\r\n" + json_line(2) + b"\r\n" + b"{bad\r\n"
    parsed = parse_objects([("win", data)])
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert parsed.events["_line"].tolist() == [1, 3]
    assert rejected(parsed) == [[4, "invalid_json"]]
    assert parsed.rejects["excerpt"].tolist() == ["{bad"]
    assert parsed.lines_read == 3


def test_two_json_objects_on_one_line_are_quarantined():
    """A line holding two JSON objects (e.g. a writer that lost a newline) is not one JSON object:
    it is set aside and the object's other lines are kept."""
    glued = json_line(2) + b" " + json_line(3)
    parsed = parse(json_line(1), glued, json_line(4))
    assert parsed.events["event_id"].tolist() == [eid(1), eid(4)]
    assert rejected(parsed) == [[2, "invalid_json"]]


def test_invalid_utf8_inside_a_json_string_is_quarantined():
    """A stray Latin-1 byte in a JSON string (here the user agent) makes the line undecodable; the
    object's other lines are kept."""
    latin1 = json_line(2, useragent="Mozilla/5.0 PLACEHOLDER").replace(b"PLACEHOLDER", b"caf\xe9")
    parsed = parse(json_line(1), latin1, json_line(3))
    assert parsed.events["event_id"].tolist() == [eid(1), eid(3)]
    assert rejected(parsed) == [[2, "undecodable_bytes"]]
    assert parsed.rejects["excerpt"].iloc[0] == latin1.decode("utf-8", "replace")


# --- objects: gzip, damage, size -------------------------------------------------------------


def _gzip_cut_after(payload: bytes) -> bytes:
    """A gzip stream of `payload` that stops (flushed, unfinished) right after it: no final block,
    no CRC trailer, as when an upload is cut off."""
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)


def test_gzip_objects_are_decompressed_and_counted_separately():
    first = gzip.compress(json_line(1) + b"\n" + json_line(2) + b"\n")
    second = gzip.compress(json_line(3, collector_tstamp="2024-05-01T12:00:00Z"))
    parsed = parse_objects([("one.gz", first), ("two.gz", second)])
    assert parsed.objects_read == 2
    assert parsed.lines_read == 3
    assert parsed.rejects.empty
    assert parsed.events[["_source", "_line"]].values.tolist() == [
        ["one.gz", 1],
        ["one.gz", 2],
        ["two.gz", 1],
    ]


def test_gunzip_prefix_decompress_and_complete_lines():
    payload = b"line one\nline two\nline three\n"
    lines = [b"line one", b"line two", b"line three"]
    assert gunzip_prefix(gzip.compress(payload)) == (payload, True)
    text, intact = gunzip_prefix(_gzip_cut_after(payload + b"partial"))
    assert (text, intact) == (payload + b"partial", False)
    assert decompress(payload) == (payload, True)
    assert complete_lines(*decompress(payload)) == lines
    assert complete_lines(*decompress(gzip.compress(payload))) == lines
    # Of a damaged stream only the complete lines: "partial" is dropped.
    assert decompress(_gzip_cut_after(payload + b"partial"))[1] is False
    assert complete_lines(*decompress(_gzip_cut_after(payload + b"partial"))) == lines
    assert decompress(gzip.compress(payload)[:5]) == (b"", False)
    assert complete_lines(*decompress(gzip.compress(payload)[:5])) == []
    assert complete_lines(*decompress(b"")) == []


def test_truncated_gzip_keeps_complete_lines_before_the_damage():
    payload = json_line(1) + b"\n" + json_line(2) + b"\n" + json_line(3)[:25]
    parsed = parse_objects([("cut.gz", _gzip_cut_after(payload))])

    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    # The partial third line is not parsed; the damage is reported once, at line 3.
    assert parsed.rejects[["source", "line_number", "reason"]].values.tolist() == [
        ["cut.gz", 3, "truncated_gzip"]
    ]
    assert parsed.reject_counts == {"truncated_gzip": 1}
    # Two lines, and the damaged tail counted as one unusable line.
    assert parsed.lines_read == 3


def test_truncated_gzip_cut_at_a_line_end():
    payload = json_line(1) + b"\n" + json_line(2) + b"\n"
    parsed = parse_objects([("cut.gz", _gzip_cut_after(payload))])
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert rejected(parsed) == [[3, "truncated_gzip"]]


def test_gzip_without_its_crc_trailer_keeps_every_complete_line():
    payload = b"\n".join([json_line(1), json_line(2), json_line(3)]) + b"\n"
    parsed = parse_objects([("cut.gz", gzip.compress(payload)[:-4])])
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2), eid(3)]
    assert rejected(parsed) == [[4, "truncated_gzip"]]
    assert parsed.lines_read == 4


def test_gzip_cut_inside_its_header_keeps_nothing_and_reports_it():
    data = gzip.compress(json_line(1) + b"\n")[:5]
    parsed = parse_objects([("cut.gz", data)])
    assert parsed.events.empty
    assert rejected(parsed) == [[1, "truncated_gzip"]]
    assert parsed.lines_read == 1


def test_corrupt_gzip_tail_keeps_complete_lines_before_the_damage():
    payload = json_line(1) + b"\n" + json_line(2) + b"\n"
    data = _gzip_cut_after(payload) + b"\xff" * 16  # garbage where the next deflate block should be
    parsed = parse_objects([("corrupt.gz", data)])

    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert rejected(parsed) == [[3, "truncated_gzip"]]


def test_garbage_after_a_complete_gzip_member_is_reported():
    data = gzip.compress(json_line(1) + b"\n" + json_line(2) + b"\n") + b"not gzip at all"
    parsed = parse_objects([("tail.gz", data)])
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2)]
    assert rejected(parsed) == [[3, "truncated_gzip"]]


def test_concatenated_gzip_members_are_one_object():
    data = gzip.compress(json_line(1) + b"\n") + gzip.compress(json_line(2) + b"\n" + json_line(3) + b"\n")
    parsed = parse_objects([("multi.gz", data)])
    assert parsed.rejects.empty
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2), eid(3)]
    assert parsed.events["_line"].tolist() == [1, 2, 3]
    assert parsed.lines_read == 3
    assert gunzip_prefix(data)[1] is True


def test_empty_objects_give_an_empty_typed_table():
    parsed = parse_objects([("empty", b""), ("empty.gz", gzip.compress(b"")), ("blank", b"\n\n")])
    assert parsed.objects_read == 3
    assert parsed.lines_read == 0
    assert parsed.events.empty
    assert parsed.rejects.empty
    assert parsed.reject_counts == {}
    assert set(PARSED_COLUMNS) <= set(parsed.events.columns)
    assert str(parsed.events["collector_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert str(parsed.events["dvce_created_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert list(parsed.rejects.columns) == ["source", "line_number", "reason", "excerpt"]


def test_no_objects_at_all():
    parsed = parse_objects([])
    assert parsed.objects_read == 0
    assert parsed.lines_read == 0
    assert parsed.events.empty
    assert set(PARSED_COLUMNS) <= set(parsed.events.columns)


def test_a_10_mb_line_is_parsed_or_quarantined_without_error():
    huge = json_line(2, useragent="x" * 10_000_000, big_field="y" * 1000)
    broken = huge[:-1]  # the closing brace is missing
    data = b"\n".join([json_line(1), huge, broken, json_line(4)])
    for key, blob in (("plain", data), ("zipped.gz", gzip.compress(data, compresslevel=1))):
        parsed = parse_objects([(key, blob)])
        assert parsed.events["event_id"].tolist() == [eid(1), eid(2), eid(4)], key
        assert len(parsed.events.set_index("event_id").loc[eid(2), "useragent"]) == 10_000_000
        assert rejected(parsed) == [[3, "invalid_json"]]
        assert parsed.rejects["excerpt"].iloc[0] == broken[:500].decode()
        assert parsed.lines_read == 4


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


def amp_line(n: int, at: str, client: str = "amp-1", name: str = "amp_page_view", **fields) -> bytes:
    """An AMP event: no domain_userid nor domain_sessionid; device time = collector time = at."""
    return json_line(
        n,
        event_name=name,
        collector_tstamp=at,
        dvce_created_tstamp=at,
        domain_userid=None,
        domain_sessionid=None,
        **{AMP_ID: [{"ampClientId": client}]},
        **fields,
    )


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


# --- clean_window: reading time each ping adds -----------------------------------------------


def web(n: int, at: str, name: str = "page_ping", pv: str | None = "pv-1", **fields) -> bytes:
    """A web event of page view `pv`, created and collected at `at`."""
    context = {WEB_PAGE: [{"id": pv}]} if pv else {}
    return json_line(n, event_name=name, collector_tstamp=at, dvce_created_tstamp=at, **context, **fields)


def increments(window: ParsedEvents, context: ParsedEvents | None = None, settings=None) -> dict[str, float]:
    settings = settings or CITY_EVENTS
    events = clean_window(window, context or no_events(), settings).events
    return dict(zip(events["event_id"], events["engaged_increment_seconds"], strict=True))


def test_pings_in_distinct_heartbeat_windows_add_10_each_after_the_first_5():
    # View at 10:00:00; pings at :05, :17, :25, :58 -> windows 0, 1, 2, 5 (4 windows) -> 10 x 3 + 5.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:00Z", "page_view"),
            web(2, "2024-05-01T10:00:05Z"),
            web(3, "2024-05-01T10:00:17Z"),
            web(4, "2024-05-01T10:00:25Z"),
            web(5, "2024-05-01T10:00:58Z"),
        )
    )
    assert got == {eid(1): 0.0, eid(2): 5.0, eid(3): 10.0, eid(4): 10.0, eid(5): 10.0}
    assert sum(got.values()) == 10 * (4 - 1) + 5 == 35


def test_two_pings_in_the_same_window_add_10_once():
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:05Z"),
            web(2, "2024-05-01T10:00:11Z"),
            web(3, "2024-05-01T10:00:19.999Z"),  # same window as :11
        )
    )
    assert sorted(got.values()) == [0.0, 5.0, 10.0]
    assert sum(got.values()) == 15


def test_heartbeat_windows_are_epoch_aligned_and_per_page_view():
    # :09 and :11 are 2 s apart but in two windows; pv-2 is another page view of the same page.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:09Z"),
            web(2, "2024-05-01T10:00:11Z"),
            web(3, "2024-05-01T10:00:12Z", pv="pv-2"),
        )
    )
    assert got == {eid(1): 5.0, eid(2): 10.0, eid(3): 5.0}


def test_without_a_page_view_id_a_page_view_is_the_reader_session_and_page():
    # No web_page context: pings of the same reader, session and (normalized) page are one page view.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:05Z", pv=None),
            web(2, "2024-05-01T10:00:15Z", pv=None, page_urlpath=A1 + "?utm=mail"),
            web(3, "2024-05-01T10:00:25Z", pv=None, domain_sessionid="session-2"),
            web(4, "2024-05-01T10:00:35Z", pv=None, page_urlpath="/article/2/b/"),
        )
    )
    assert got == {eid(1): 5.0, eid(2): 10.0, eid(3): 5.0, eid(4): 5.0}


def test_a_page_view_split_between_lookback_and_window_is_not_counted_twice():
    # Windows a = 10:00:0x, b = :1x, c = :2x, d = :3x. Context: view, pings in a and b (5 + 10).
    # Window: pings in b, c, d -> b is known, so 10 + 10. Total 35 = 10 x (4 - 1) + 5.
    context = parse(
        web(1, "2024-05-01T10:00:00Z", "page_view"),
        web(2, "2024-05-01T10:00:05Z"),
        web(3, "2024-05-01T10:00:15Z"),
        key="context",
    )
    window = parse(
        web(4, "2024-05-01T10:00:19Z"),
        web(5, "2024-05-01T10:00:25Z"),
        web(6, "2024-05-01T10:00:35Z"),
        web(7, "2024-05-01T10:00:36Z"),
    )
    got = increments(window, context)
    assert got == {eid(4): 0.0, eid(5): 10.0, eid(6): 10.0, eid(7): 0.0}
    assert sum(got.values()) == 20
    assert sum(increments(context).values()) + 20 == 10 * (4 - 1) + 5


def test_a_ping_delivered_again_adds_nothing():
    context = parse(web(1, "2024-05-01T10:00:05Z"), key="context")
    window = parse(web(1, "2024-05-01T10:00:05Z"), web(2, "2024-05-01T10:00:15Z"))
    assert increments(window, context) == {eid(2): 10.0}


def test_first_ping_in_the_window_after_a_lookback_page_view_is_the_minimum_visit():
    context = parse(web(1, "2024-05-01T10:00:00Z", "page_view"), key="context")
    window = parse(web(2, "2024-05-01T10:00:05Z"), web(3, "2024-05-01T10:00:15Z"))
    assert increments(window, context) == {eid(2): 5.0, eid(3): 10.0}


def test_heartbeat_comes_from_the_site(city):
    settings = city.events.model_copy(update={"ping_interval_seconds": 30})
    # Pings at :05, :15, :25, :35 -> 30 s windows [0, 30) and [30, 60) -> 30 x 1 + 5.
    window = parse(*[web(i, f"2024-05-01T10:00:{s:02d}Z") for i, s in enumerate((5, 15, 25, 35), start=1)])
    got = increments(window, settings=settings)
    assert got == {eid(1): 5.0, eid(2): 0.0, eid(3): 0.0, eid(4): 30.0}


def amp_ping(n: int, at: str, total: float | None, pv: str = "apv-1") -> bytes:
    fields = {AMP_WEB_PAGE: [{"ampPageViewId": pv}]}
    if total is not None:
        fields[AMP_PAGE_PING] = {"totalEngagedTime": total}
    return amp_line(n, at, name="amp_page_ping", **fields)


def test_amp_pings_add_the_rise_of_the_cumulative_engaged_time():
    got = increments(
        parse(
            amp_line(1, "2024-05-01T10:00:00Z", **{AMP_WEB_PAGE: [{"ampPageViewId": "apv-1"}]}),
            amp_ping(2, "2024-05-01T10:00:10Z", 4),
            amp_ping(3, "2024-05-01T10:00:20Z", 4),  # idle: no rise
            amp_ping(4, "2024-05-01T10:00:30Z", 11.5),
            amp_ping(5, "2024-05-01T10:00:40Z", None),  # no engaged time: adds nothing
            amp_ping(6, "2024-05-01T10:00:50Z", 3, pv="apv-2"),  # another page view
        )
    )
    assert got == {eid(1): 0.0, eid(2): 4.0, eid(3): 0.0, eid(4): 7.5, eid(5): 0.0, eid(6): 3.0}


def test_amp_pings_split_between_lookback_and_window_rise_over_the_lookback_maximum():
    context = parse(
        amp_ping(1, "2024-05-01T09:59:10Z", 4),
        amp_ping(2, "2024-05-01T09:59:20Z", 9),
        key="context",
    )
    window = parse(
        amp_ping(3, "2024-05-01T10:00:00Z", 9),  # no rise over 9
        amp_ping(4, "2024-05-01T10:00:10Z", 15),  # +6
        amp_ping(5, "2024-05-01T10:00:20Z", 12),  # below the maximum: +0
        amp_ping(6, "2024-05-01T10:00:30Z", 21.5),  # +6.5
    )
    got = increments(window, context)
    assert got == {eid(3): 0.0, eid(4): 6.0, eid(5): 0.0, eid(6): 6.5}
    assert sum(got.values()) == 21.5 - 9


def test_amp_ping_delivered_late_below_the_lookback_maximum_adds_nothing():
    context = parse(amp_ping(1, "2024-05-01T09:59:30Z", 20), key="context")
    window = parse(amp_ping(2, "2024-05-01T09:59:10Z", 8))
    assert increments(window, context) == {eid(2): 0.0}


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


def test_objects_parse_the_same_whatever_the_piece_and_slice_sizes(monkeypatch):
    """Lines are split a piece of the text at a time and JSON lines go to pyarrow in slices; tiny
    pieces and slices (cuts next to CRLF, blank lines, a damaged tail) change nothing."""
    from article_rec_assets.logic import ingestion

    texts = [b"a\r\nb\rc\n\nd", b"\nx\r\n\r\ny\n", b"\n", b"", b"one\n\ntwo\r\n"]
    for text in texts:
        for intact in (True, False):
            complete = text.rpartition(b"\n")[0]
            expected = text.splitlines() if intact else (complete.split(b"\n") if complete else [])
            for piece_bytes in (1, 2, 3, 8 << 20):
                monkeypatch.setattr(ingestion, "LINE_PIECE_BYTES", piece_bytes)
                assert complete_lines(text, intact) == expected, (text, intact, piece_bytes)

    lines = [
        json_line(1),
        b"{oops",
        tsv_line(event_id=eid(2), event="page_view", collector_tstamp="2024-05-01 10:00:00.000"),
        json_line(3, page_urlpath=None, page_url=None),  # a page event without a path
        json_line(4, domain_userid=7),  # pyarrow refuses the number: built row by row
        b"",
        json_line(5),
        b"not a line",
        json_line(6, event_id="not-a-uuid"),
        *[json_line(n) for n in range(7, 20)],
    ]
    plain = b"\r\n".join(lines) + b"\r\n"
    objects = [("plain", plain), ("gz", gzip.compress(plain)), ("cut.gz", _gzip_cut_after(plain + b"{par"))]
    monkeypatch.setattr(ingestion, "LINE_PIECE_BYTES", 8 << 20)
    whole = parse_objects(objects)
    monkeypatch.setattr(ingestion, "LINE_PIECE_BYTES", 100)
    monkeypatch.setattr(ingestion, "JSON_SLICE_LINES", 3)
    monkeypatch.setattr(ingestion, "JSON_FALLBACK_CHUNK", 1)
    small = parse_objects(objects)
    assert len(whole.rejects) == 3 * 5 + 1  # {oops, a page without path, not a line, the bad id; cut
    pd.testing.assert_frame_equal(small.rejects, whole.rejects)
    assert (small.lines_read, small.objects_read) == (whole.lines_read, whole.objects_read)
    columns = [c for c in whole.events.columns if c != "_line"]
    key = ["_source", "_line"]
    pd.testing.assert_frame_equal(
        small.events.sort_values(key, ignore_index=True)[columns],
        whole.events.sort_values(key, ignore_index=True)[columns],
    )

"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects."""

import gzip
import zlib
from pathlib import Path

import orjson
import pandas as pd

from article_rec_assets.logic.ingestion import (
    EVENT_COLUMNS,
    TSV_FIELD_COUNT,
    TSV_POSITIONS,
    parse_line,
    parse_objects,
)

SNOWPLOW_SAMPLE = Path("/work/shared/data/snowplow/rdb_loader_spec4_enriched_events.tsv")


def json_line(event_id: str = "e1", **fields: object) -> bytes:
    record = {
        "event_id": event_id,
        "event_name": "page_view",
        "collector_tstamp": "2024-05-01T10:00:00Z",
        "domain_userid": "reader-1",
        "page_urlhost": "democitypaper.example",
        "page_urlpath": "/article/1/a/",
    }
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def tsv_line(**fields: str) -> str:
    values = [""] * TSV_FIELD_COUNT
    for name, value in fields.items():
        values[TSV_POSITIONS[name]] = value
    return "\t".join(values)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- parse_line ------------------------------------------------------------------------------


def test_parse_line_json_event_returns_its_fields():
    record = parse_line(json_line("e1", page_urlpath="/article/7/x/").decode())
    assert isinstance(record, dict)
    assert record["event_id"] == "e1"
    assert record["event_name"] == "page_view"
    assert record["collector_tstamp"] == "2024-05-01T10:00:00Z"
    assert record["page_urlpath"] == "/article/7/x/"


def test_parse_line_json_reasons():
    assert parse_line('{"event_id": "e1", ') == "invalid_json"
    assert parse_line('{"event_name": "page_view", "collector_tstamp": "2024-05-01T10:00:00Z"}') == (
        "missing_event_id"
    )
    assert parse_line('{"event_id": "", "event_name": "page_view"}') == "missing_event_id"
    assert parse_line('{"event_id": "e1", "collector_tstamp": "2024-05-01T10:00:00Z"}') == (
        "missing_event_name"
    )
    assert parse_line('{"event_id": "e1", "event_name": "page_view"}') == "missing_timestamp"


def test_parse_line_json_event_without_event_name_falls_back_to_event():
    record = parse_line(
        '{"event_id": "e1", "event": "page_ping", "collector_tstamp": "2024-05-01T10:00:00Z"}'
    )
    assert isinstance(record, dict)
    assert record["event"] == "page_ping"


def test_parse_line_tsv_takes_fields_by_position_and_normalises_timestamps():
    line = tsv_line(
        app_id="site",
        platform="web",
        collector_tstamp="2021-10-14 13:54:40.027000001",
        event="page_view",
        event_id="abc",
        domain_userid="reader",
        page_url="https://democitypaper.example/article/1/a/",
        page_urlpath="/article/1/a/",
        domain_sessionid="session",
        event_name="page_view",
    )
    record = parse_line(line)
    assert isinstance(record, dict)
    assert record["event_id"] == "abc"
    assert record["app_id"] == "site"
    assert record["domain_userid"] == "reader"
    assert record["domain_sessionid"] == "session"
    assert record["page_urlpath"] == "/article/1/a/"
    # Space -> "T", nanoseconds cut to microseconds (26 characters).
    assert record["collector_tstamp"] == "2021-10-14T13:54:40.027000"
    # Empty TSV fields are nulls.
    assert record["dvce_created_tstamp"] is None
    assert record["useragent"] is None


def test_parse_line_tsv_with_wrong_field_count():
    assert parse_line("a\tb\tc") == "wrong_field_count"
    assert parse_line("\t".join([""] * (TSV_FIELD_COUNT + 1))) == "wrong_field_count"
    assert parse_line("\t".join([""] * (TSV_FIELD_COUNT - 1))) == "wrong_field_count"


def test_parse_line_tsv_with_131_fields_but_no_event_id():
    assert (
        parse_line(tsv_line(event="page_view", collector_tstamp="2021-10-14 13:54:40")) == "missing_event_id"
    )


# --- the real Snowplow enriched TSV sample ---------------------------------------------------


def test_real_snowplow_tsv_sample_gives_48_events_and_rejects_lines_1_and_2():
    parsed = parse_objects([("sample.tsv", SNOWPLOW_SAMPLE.read_bytes())])

    assert parsed.objects_read == 1
    assert parsed.lines_read == 50
    assert len(parsed.events) == 48
    assert parsed.reject_counts == {"wrong_field_count": 2}
    assert parsed.rejects["line_number"].tolist() == [1, 2]
    assert parsed.rejects["reason"].tolist() == ["wrong_field_count", "wrong_field_count"]
    assert parsed.rejects["source"].tolist() == ["sample.tsv", "sample.tsv"]
    # The excerpt is the start of the rejected line (line 1 starts with an empty app_id, then "web").
    assert parsed.rejects["excerpt"].iloc[0].startswith("\tweb\t2021-10-14 13:54:45.811000001\t")

    events = parsed.events
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["event_id"].is_unique
    assert events["event_name"].value_counts().to_dict() == {"page_view": 30, "link_click": 18}
    assert set(events["app_id"]) == {"spirit-walk"}
    assert set(events["platform"]) == {"web"}


def test_real_snowplow_tsv_sample_field_values_and_order():
    events = parse_objects([("sample.tsv", SNOWPLOW_SAMPLE.read_bytes())]).events

    # Line 3 of the file: collector time 2021-10-15 09:05:29.037054266 (cut to microseconds), no
    # device time (so the collector time stands in), host taken from page_url.
    row = events.set_index("event_id").loc["56e35206-12f4-46a9-b1b2-042b19876956"]
    assert row["collector_tstamp"] == ts("2021-10-15 09:05:29.037054")
    assert row["dvce_created_tstamp"] == ts("2021-10-15 09:05:29.037054")
    assert row["page_urlhost"] == "n.fr"
    assert row["page_urlpath"] == "x9undfqbhicntzV"
    assert row["domain_userid"] == "3d8103fa-989c-43ec-a526-099fd0c76c5b"
    assert row["domain_sessionid"] == "82ef7248-08f8-4b48-a8f4-cec0f35c4e5c"
    assert row["event_name"] == "page_view"
    assert row["useragent"].startswith("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_5)")

    # Sorted by collector time: line 50 (2021-09-17 09:05:28.59) first, line 46 (2021-10-15
    # 09:06:27.1) last.
    assert events["collector_tstamp"].is_monotonic_increasing
    assert events["event_id"].iloc[0] == "67e30c3f-7a83-40c2-a9c1-a5c9e7770bf6"
    assert events["collector_tstamp"].iloc[0] == ts("2021-09-17 09:05:28.590000")
    assert events["event_id"].iloc[-1] == "d7ef9246-b1f7-498d-a39b-749a57316f80"
    # No device-created timestamps in this sample at all.
    assert (events["dvce_created_tstamp"] == events["collector_tstamp"]).all()


# --- parse_objects: JSON lines, gzip and bad input --------------------------------------------


def test_json_lines_object_parses_every_line_with_types():
    data = b"\n".join(
        [
            json_line(
                "e2", collector_tstamp="2024-05-01T10:00:05.250Z", dvce_created_tstamp="2024-05-01T10:00:04Z"
            ),
            json_line("e1", collector_tstamp="2024-05-01T10:00:00Z"),
        ]
    )
    parsed = parse_objects([("k.jsonl", data)])

    assert parsed.lines_read == 2
    assert parsed.rejects.empty
    assert parsed.reject_counts == {}
    events = parsed.events
    assert events["event_id"].tolist() == ["e1", "e2"]  # sorted by collector time
    assert events["collector_tstamp"].tolist() == [ts("2024-05-01 10:00:00"), ts("2024-05-01 10:00:05.250")]
    # e1 has no device time: the collector time stands in.
    assert events["dvce_created_tstamp"].tolist() == [ts("2024-05-01 10:00:00"), ts("2024-05-01 10:00:04")]
    assert str(events["collector_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert str(events["event_id"].dtype) == "string"


def test_host_comes_from_page_url_when_page_urlhost_is_missing():
    data = b"\n".join(
        [
            json_line("e1", page_urlhost=None, page_url="https://www.democitypaper.example/article/1/a/?x=1"),
            json_line("e2", page_urlhost="explicit.example", page_url="https://other.example/"),
        ]
    )
    events = parse_objects([("k", data)]).events.set_index("event_id")
    assert events.loc["e1", "page_urlhost"] == "www.democitypaper.example"
    assert events.loc["e2", "page_urlhost"] == "explicit.example"


def test_json_and_tsv_lines_in_one_object():
    tsv = tsv_line(
        event="page_view",
        event_id="tsv-1",
        collector_tstamp="2024-05-01 09:00:00.123456789",
        page_url="https://democitypaper.example/article/2/b/",
    )
    data = json_line("json-1", collector_tstamp="2024-05-01T10:00:00Z") + b"\n" + tsv.encode()
    parsed = parse_objects([("mixed", data)])
    assert parsed.rejects.empty
    events = parsed.events
    assert events["event_id"].tolist() == ["tsv-1", "json-1"]
    assert events["collector_tstamp"].tolist() == [
        ts("2024-05-01 09:00:00.123456"),
        ts("2024-05-01 10:00:00"),
    ]
    # The TSV line has only `event`: it becomes the event name.
    assert events["event_name"].tolist() == ["page_view", "page_view"]
    assert events["page_urlhost"].tolist() == ["democitypaper.example", "democitypaper.example"]


def test_bad_lines_are_set_aside_with_reason_line_number_and_excerpt():
    lines = [
        json_line("ok-1"),  # 1
        b'{"event_id": "broken"',  # 2 invalid json
        b'{"event_name": "page_view", "collector_tstamp": "2024-05-01T10:00:00Z"}',  # 3 no event_id
        b"\xff\xfe not utf-8",  # 4
        b"",  # 5 blank: skipped, not counted
        json_line("ok-2"),  # 6
        b"only\ttwo",  # 7 TSV with 2 fields
    ]
    parsed = parse_objects([("bucket/key.jsonl", b"\n".join(lines))])

    assert parsed.events["event_id"].tolist() == ["ok-1", "ok-2"]
    assert parsed.lines_read == 6
    assert parsed.rejects[["line_number", "reason"]].values.tolist() == [
        [2, "invalid_json"],
        [3, "missing_event_id"],
        [4, "undecodable_bytes"],
        [7, "wrong_field_count"],
    ]
    assert set(parsed.rejects["source"]) == {"bucket/key.jsonl"}
    assert parsed.rejects["excerpt"].tolist()[0] == '{"event_id": "broken"'
    assert parsed.rejects["excerpt"].tolist()[2] == "\ufffd\ufffd not utf-8"
    assert parsed.reject_counts == {
        "invalid_json": 1,
        "missing_event_id": 1,
        "undecodable_bytes": 1,
        "wrong_field_count": 1,
    }


def test_excerpt_is_cut_at_500_characters():
    line = b'{"event_id": "' + b"x" * 1000
    rejects = parse_objects([("k", line)]).rejects
    assert rejects["reason"].tolist() == ["invalid_json"]
    assert len(rejects["excerpt"].iloc[0]) == 500


def test_unparseable_timestamps():
    data = b"\n".join(
        [
            json_line("good"),
            json_line("bad-collector", collector_tstamp="not a time"),
            json_line(
                "bad-device", dvce_created_tstamp="yesterday-ish", collector_tstamp="2024-05-01T11:00:00Z"
            ),
        ]
    )
    parsed = parse_objects([("k", data)])
    assert parsed.events["event_id"].tolist() == ["good", "bad-device"]
    assert parsed.rejects[["source", "line_number", "reason"]].values.tolist() == [
        ["k", 2, "unparseable_timestamp"]
    ]
    assert parsed.reject_counts == {"unparseable_timestamp": 1}
    # A bad device time is not fatal: the collector time stands in.
    bad_device = parsed.events.set_index("event_id").loc["bad-device"]
    assert bad_device["dvce_created_tstamp"] == ts("2024-05-01 11:00:00")


def test_gzip_objects_are_decompressed_and_counted_separately():
    first = gzip.compress(json_line("a1") + b"\n" + json_line("a2") + b"\n")
    second = gzip.compress(json_line("b1", collector_tstamp="2024-05-01T12:00:00Z"))
    parsed = parse_objects([("one.gz", first), ("two.gz", second)])
    assert parsed.objects_read == 2
    assert parsed.lines_read == 3
    assert parsed.rejects.empty
    assert sorted(parsed.events["event_id"]) == ["a1", "a2", "b1"]


def _gzip_cut_after(payload: bytes) -> bytes:
    """A gzip stream of `payload` that stops (flushed, unfinished) right after it: no final block,
    no CRC trailer, as when an upload is cut off."""
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)


def test_truncated_gzip_keeps_complete_lines_before_the_damage():
    payload = json_line("t1") + b"\n" + json_line("t2") + b"\n" + json_line("t3")[:25]
    parsed = parse_objects([("cut.gz", _gzip_cut_after(payload))])

    assert parsed.events["event_id"].tolist() == ["t1", "t2"]
    # The partial third line is not parsed; the damage is reported once, at line 3.
    assert parsed.rejects[["source", "line_number", "reason", "excerpt"]].values.tolist() == [
        ["cut.gz", 3, "truncated_gzip", ""]
    ]
    assert parsed.reject_counts == {"truncated_gzip": 1}
    assert parsed.lines_read == 2


def test_truncated_gzip_cut_at_a_line_end():
    payload = json_line("t1") + b"\n" + json_line("t2") + b"\n"
    parsed = parse_objects([("cut.gz", _gzip_cut_after(payload))])
    assert parsed.events["event_id"].tolist() == ["t1", "t2"]
    assert parsed.rejects[["line_number", "reason"]].values.tolist() == [[3, "truncated_gzip"]]


def test_gzip_cut_inside_its_header_keeps_nothing_and_reports_it():
    data = gzip.compress(json_line("t1") + b"\n")[:5]
    parsed = parse_objects([("cut.gz", data)])
    assert parsed.events.empty
    assert parsed.rejects[["line_number", "reason"]].values.tolist() == [[1, "truncated_gzip"]]


def test_corrupt_gzip_tail_keeps_complete_lines_before_the_damage():
    """`_lines` promises that a corrupt gzip tail yields the good lines, then one reject."""
    payload = json_line("c1") + b"\n" + json_line("c2") + b"\n"
    data = _gzip_cut_after(payload) + b"\xff" * 16  # garbage where the next deflate block should be
    parsed = parse_objects([("corrupt.gz", data)])

    assert parsed.events["event_id"].tolist() == ["c1", "c2"]
    assert parsed.rejects[["line_number", "reason"]].values.tolist() == [[3, "truncated_gzip"]]


def test_empty_objects_give_an_empty_typed_table():
    parsed = parse_objects([("empty", b""), ("empty.gz", gzip.compress(b""))])
    assert parsed.objects_read == 2
    assert parsed.lines_read == 0
    assert parsed.events.empty
    assert parsed.rejects.empty
    assert parsed.reject_counts == {}
    assert list(parsed.events.columns) == list(EVENT_COLUMNS)
    assert str(parsed.events["collector_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert str(parsed.events["dvce_created_tstamp"].dtype) == "datetime64[ns, UTC]"
    assert str(parsed.events["event_id"].dtype) == "string"
    assert list(parsed.rejects.columns) == ["source", "line_number", "reason", "excerpt"]


def test_no_objects_at_all():
    parsed = parse_objects([])
    assert parsed.objects_read == 0
    assert parsed.events.empty
    assert list(parsed.events.columns) == list(EVENT_COLUMNS)


def test_crlf_line_endings_and_blank_lines_keep_line_numbers():
    data = json_line("w1") + b"\r\n\r\n" + json_line("w2") + b"\r\n" + b"{bad\r\n"
    parsed = parse_objects([("win", data)])
    assert parsed.events["event_id"].tolist() == ["w1", "w2"]
    assert parsed.rejects[["line_number", "reason"]].values.tolist() == [[4, "invalid_json"]]
    assert parsed.lines_read == 3

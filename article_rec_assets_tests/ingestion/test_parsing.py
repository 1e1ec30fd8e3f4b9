"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (docs/contract.md, section 3), not the module's table, so that a wrong position fails.
"""

import gzip

import pandas as pd
import pyarrow as pa
import pytest

from article_rec_assets.ingestion import compression, parsing
from article_rec_assets.ingestion.compression import complete_lines
from article_rec_assets.ingestion.parsing import PARSED_COLUMNS, parse_objects
from article_rec_assets_tests.ingestion.lines import (
    A1,
    AMP_ID,
    AMP_PAGE_PING,
    AMP_WEB_PAGE,
    IAB,
    WEB_PAGE,
    eid,
    gzip_cut_after,
    json_line,
    parse,
    rejected,
    ts,
    tsv_line,
)

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


def test_an_event_older_than_the_accepted_lateness_is_set_aside_with_its_own_reason():
    lines = [
        json_line(1, collector_tstamp="1969-12-31T23:59:59Z", dvce_created_tstamp="1969-12-31T23:59:58Z"),
        json_line(2, collector_tstamp="2024-04-28T10:00:00Z"),  # exactly the bound: accepted
        json_line(3, collector_tstamp="2024-04-28T09:59:59.999Z"),
        json_line(4, collector_tstamp="2024-05-01T10:30:00Z"),
    ]
    parsed = parse(
        *lines, received_before=ts("2024-05-01 11:00:00"), received_after=ts("2024-04-28 10:00:00")
    )
    assert parsed.events["event_id"].tolist() == [eid(2), eid(4)]
    assert rejected(parsed) == [[1, "timestamp_in_past"], [3, "timestamp_in_past"]]
    assert parse(*lines).rejects.empty  # without a bound nothing is too old


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


def test_objects_parse_the_same_whatever_the_piece_and_slice_sizes(monkeypatch):
    """Line ends and undecodable bytes are searched a piece of the text at a time, and JSON lines
    pyarrow refuses are read again in slices; tiny pieces and slices (cuts next to CRLF, blank
    lines, a damaged tail) change nothing."""
    texts = [b"a\r\nb\rc\n\nd", b"\nx\r\n\r\ny\n", b"\n", b"", b"one\n\ntwo\r\n"]
    for text in texts:
        for intact in (True, False):
            complete = text.rpartition(b"\n")[0]
            expected = text.splitlines() if intact else (complete.split(b"\n") if complete else [])
            for piece_bytes in (1, 2, 3, 8 << 20):
                monkeypatch.setattr(compression, "SCAN_BYTES", piece_bytes)
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
    objects = [("plain", plain), ("gz", gzip.compress(plain)), ("cut.gz", gzip_cut_after(plain + b"{par"))]
    monkeypatch.setattr(compression, "SCAN_BYTES", 16 << 20)
    whole = parse_objects(objects)
    monkeypatch.setattr(compression, "SCAN_BYTES", 7)
    monkeypatch.setattr(parsing, "UTF8_SCAN_BYTES", 5)
    monkeypatch.setattr(parsing, "JSON_SLICE_LINES", 3)
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


def test_a_byte_order_mark_at_the_start_of_an_object_is_not_part_of_its_first_event():
    bom = b"\xef\xbb\xbf"
    for first in (
        json_line(1),
        tsv_line(event_id=eid(1), event="page_view", collector_tstamp="2024-05-01 10:00:00", page_urlpath=A1),
    ):
        parsed = parse_objects([("bom", bom + first + b"\n" + json_line(2))])
        assert sorted(parsed.events["event_id"]) == [eid(1), eid(2)] and parsed.rejects.empty
    # Anywhere else it is the line's own problem.
    assert parse_objects([("k", json_line(1) + b"\n" + bom + json_line(2))]).reject_counts != {}


def test_bad_lines_cost_their_good_neighbours_a_few_readings_at_most(monkeypatch):
    """pyarrow stops at a bad line and says where: the lines before it are read once more and
    the reading goes on after it. Many bad lines spread through an object must not make pyarrow
    read the object once per bad line: the bytes it reads stay a few times the text."""
    lines = [json_line(n) for n in range(1, 3001)]
    for position in range(30, 3000, 60):  # 50 lines of a field pyarrow types differently
        lines[position] = json_line(position + 1, domain_userid=7)
    text = b"\n".join(lines) + b"\n"
    read: list[int] = []

    def counting(reader, stops_at_error: bool):
        def read_block(block):
            try:
                table = reader(block)
            except pa.ArrowInvalid as error:
                # The one-block reader stops at the row its error names (the threaded one reads
                # every piece first): it read the lines up to that row.
                row = parsing._failed_row(error)
                if row is not None and stops_at_error:
                    read.append(sum(len(x) + 1 for x in bytes(block).split(b"\n")[: row + 1]))
                else:
                    read.append(len(block))
                raise
            read.append(len(block))
            return table

        return read_block

    monkeypatch.setattr(parsing, "_read_json_block", counting(parsing._read_json_block, False))
    monkeypatch.setattr(parsing, "_read_json_whole", counting(parsing._read_json_whole, True))
    parsed = parse_objects([("mixed.gz", gzip.compress(text))])
    assert len(parsed.events) == 3000 and parsed.rejects.empty
    assert sorted(parsed.events["_line"]) == list(range(1, 3001))
    numbers = parsed.events.set_index("_line")["domain_userid"]
    assert numbers.loc[31] == "7" and numbers.loc[32] != "7"  # kept, as text, row by row
    assert sum(read) <= 4 * len(text), (sum(read) / len(text), len(read))

"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (docs/contract.md, section 3), not the module's table, so that a wrong position fails.
"""

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from article_rec_assets.ingestion import parsing
from article_rec_assets.ingestion.compression import complete_lines, decompress, gunzip_prefix
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets_tests.ingestion.lines import eid, gzip_cut_after, json_line, rejected

# --- objects: gzip, damage, size -------------------------------------------------------------


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
    assert gunzip_prefix(gzip.compress(payload))[:2] == (payload, True)
    text, intact, _ = gunzip_prefix(gzip_cut_after(payload + b"partial"))
    assert (text, intact) == (payload + b"partial", False)
    assert decompress(payload) == (payload, True, False)
    assert complete_lines(*decompress(payload)[:2]) == lines
    assert complete_lines(*decompress(gzip.compress(payload))[:2]) == lines
    # Of a damaged stream only the complete lines: "partial" is dropped.
    assert decompress(gzip_cut_after(payload + b"partial"))[1] is False
    assert complete_lines(*decompress(gzip_cut_after(payload + b"partial"))[:2]) == lines
    assert decompress(gzip.compress(payload)[:5]) == (b"", False, False)
    assert complete_lines(*decompress(gzip.compress(payload)[:5])[:2]) == []
    assert complete_lines(*decompress(b"")[:2]) == []


def test_truncated_gzip_keeps_complete_lines_before_the_damage():
    payload = json_line(1) + b"\n" + json_line(2) + b"\n" + json_line(3)[:25]
    parsed = parse_objects([("cut.gz", gzip_cut_after(payload))])

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
    parsed = parse_objects([("cut.gz", gzip_cut_after(payload))])
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
    data = gzip_cut_after(payload) + b"\xff" * 16  # garbage where the next deflate block should be
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


def test_an_object_is_read_up_to_its_bound_and_no_further():
    """A gzip bomb: 100 MB of text in about 100 KB of gzip. Read up to the bound, the rest refused."""
    bomb = gzip.compress(b"\n" * (100 << 20), compresslevel=9)
    assert len(bomb) < 200_000
    for data in (bomb, bomb + gzip.compress(b"x\n"), gzip.compress(b"x\n") + bomb):  # one or two members
        text, intact, too_large = decompress(data, max_bytes=8 << 20)
        assert (len(text), intact, too_large) == (8 << 20, False, True)
    plain = b"y\n" * 1000
    assert decompress(plain, max_bytes=100)[1:] == (False, True) and len(decompress(plain, 100)[0]) == 100
    # Exactly at the bound is still whole.
    assert decompress(gzip.compress(plain), max_bytes=len(plain)) == (plain, True, False)
    assert decompress(plain, max_bytes=len(plain)) == (plain, True, False)
    assert decompress(bomb)[1:] == (True, False)  # no bound: all of it


def test_lines_past_the_bound_are_one_quarantined_line_and_those_before_are_kept():
    good = b"\n".join(json_line(n) for n in range(1, 4)) + b"\n"
    data = gzip.compress(good + b"\n" * (50 << 20))
    parsed = parse_objects([("bomb.gz", data)], max_object_bytes=1 << 20)
    assert parsed.events["event_id"].tolist() == [eid(1), eid(2), eid(3)]
    assert parsed.reject_counts == {"object_too_large": 1}
    assert "events.max_object_megabytes" in parsed.rejects["excerpt"].iloc[0]


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_windows_objects_are_bounded_together_in_their_order(monkeypatch, parallel: int) -> None:
    """Six objects, each under the object bound, whose text adds up past the window's: read in
    order up to it (the object that crosses it up to the bound), the rest quarantined whole and
    counted; the same whatever number of objects are read at a time."""
    monkeypatch.setattr(parsing, "PARALLEL_OBJECTS", parallel)
    objects = []
    for i in range(6):  # object i: events 10i+1..10i+3, then 64 KB of blank lines
        lines = b"\n".join(json_line(10 * i + n) for n in range(1, 4)) + b"\n"
        objects.append((f"part-{i}.gz", gzip.compress(lines + b"\n" * (1 << 16))))
    each = len(gzip.decompress(objects[0][1]))
    bound = 2 * each + 100  # the first two objects whole, then a hundred bytes of the third
    parsed = parse_objects(objects, max_object_bytes=4 << 20, max_window_bytes=bound)
    assert parsed.events["event_id"].tolist() == [eid(n) for n in (1, 2, 3, 11, 12, 13)]
    rejects = parsed.rejects
    assert rejects["reason"].tolist() == ["object_too_large"] * 4
    assert rejects["source"].tolist() == [f"part-{i}.gz" for i in range(2, 6)]
    assert "events.max_window_megabytes, with the objects before it" in rejects["excerpt"].iloc[0]
    assert all("not read" in text for text in rejects["excerpt"].iloc[1:])
    assert parsed.objects_read == 6
    whole = parse_objects(objects, max_object_bytes=4 << 20)  # no window bound: every event
    assert len(whole.events) == 18 and whole.rejects.empty


# --- lines found as offsets: the same lines as splitting the text ------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: bytes(b"a{}\r\n \t"[x % 7] for x in b)))
def test_line_bounds_find_the_lines_splitting_would(text: bytes) -> None:
    # Intact: splitlines() (ends at \n, \r\n and a lone \r). Damaged: split(b"\n") of what
    # precedes the last newline (the rest was cut off), as the reading before did.
    assert complete_lines(text, True) == text.splitlines()
    end = text.rfind(b"\n")
    assert complete_lines(text, False) == (text[:end].split(b"\n") if end > 0 else [])
    assert complete_lines(bytearray(text), True) == text.splitlines()


# --- an object cut short: read once, the same text as the chunked reading gives -----------------


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=400), st.floats(min_value=0.0, max_value=1.0))
def test_an_object_cut_short_gives_the_text_the_chunked_reading_gives(lines: int, cut: float) -> None:
    whole = gzip.compress(b"\n".join(json_line(i) for i in range(lines)) + b"\n", mtime=0)
    data = whole[: int(len(whole) * cut)]
    expected = gunzip_prefix(data)
    got = decompress(data)
    assert bytes(got.text) == bytes(expected.text)
    assert got.intact == expected.intact


def test_an_object_cut_after_its_first_byte_is_a_gzip_object_cut_short() -> None:
    # Its one byte is the first of the gzip magic: no text, and not intact (as the chunked reading).
    got, expected = decompress(b"\x1f"), gunzip_prefix(b"\x1f")
    assert (bytes(got.text), got.intact) == (bytes(expected.text), expected.intact) == (b"", False)
    assert decompress(b"").intact and bytes(decompress(b"\x1fA").text) == b"\x1fA"  # a text


def test_an_object_cut_short_is_inflated_once(monkeypatch) -> None:
    from article_rec_assets.ingestion import compression

    def not_again(*args, **kwargs):
        raise AssertionError("an object cut short was inflated a second time")

    monkeypatch.setattr(compression, "gunzip_prefix", not_again)
    payload = b"\n".join(json_line(i) for i in range(50)) + b"\n"
    inflated = compression.decompress(gzip_cut_after(payload))
    assert not inflated.intact and not inflated.too_large
    assert inflated.text.count(b"\n") >= 1

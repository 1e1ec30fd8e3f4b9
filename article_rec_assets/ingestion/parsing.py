"""Raw events: parse the Snowplow lines of a window's objects into one typed row per event.

Both formats Snowplow writes occur in the same files: analytics-SDK JSON lines (a line starting
with `{`) and enriched TSV (exactly 131 tab-separated fields). An object's JSON lines go through
pyarrow's JSON reader as one block; where it stops at a bad line, the good lines around it are
kept and the bad one is read on its own, row by row, or set aside with its object, line number,
reason and first 500 characters. Nothing is silently lost.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from article_rec_assets.ingestion.compression import decompress, line_bounds
from article_rec_assets.ingestion.formats import (
    AMP_ID,
    AMP_PAGE_PING,
    AMP_WEB_PAGE,
    IAB_SPIDERS,
    JSON_SCHEMA,
    SNOWPLOW_PAGE_EVENTS,
    TSV_FIELD_COUNT,
    UUID_PATTERN,
    WEB_PAGE,
    _invalid_json_reason,
    _not_tsv_reason,
    _read_json_block,
    _read_json_whole,
    _record_from_json,
    _record_from_tsv,
    _table_from_records,
)

EXCERPT_CHARS = 500


# JSON lines read by pyarrow and made into events at a time.
JSON_SLICE_LINES = 50_000


# Objects decompressed and parsed at once (zlib and pyarrow release the GIL); more would only
# hold more decompressed text in memory on a 2-core machine.
PARALLEL_OBJECTS = 2


UTF8_BOM = b"\xef\xbb\xbf"
# Decompressed text read from one object at most (a site sets its own, `events.max_object_megabytes`).
DEFAULT_MAX_OBJECT_BYTES = 512 << 20

# Columns of a parsed event row (before cleaning), in order.
PARSED_COLUMNS = (
    "event_id",
    "event_name",
    "app_id",
    "platform",
    "domain_userid",
    "domain_sessionid",
    "amp_client_id",
    "page_view_id",
    "page_urlhost",
    "page_urlpath",
    "useragent",
    "iab_spider",
    "amp_engaged_seconds",
    "collector_tstamp",
    "dvce_created_tstamp",
)


@dataclass(frozen=True)
class Received:
    """The collector times a window accepts: from `after`, up to `before` (None: unbounded)."""

    after: pd.Timestamp | None
    before: pd.Timestamp | None


REJECT_COLUMNS = ("source", "line_number", "reason", "excerpt")
REJECT_DTYPES = {"source": "string", "line_number": "int64", "reason": "string", "excerpt": "string"}


@dataclass
class ParsedEvents:
    """Events parsed from some objects (one row per usable line), and the lines set aside."""

    events: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int = 0
    objects_read: int = 0

    @property
    def reject_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.rejects["reason"].value_counts().sort_index().items()}


def combine(parts: list[ParsedEvents]) -> ParsedEvents:
    """Several reads as one, in the order given (objects of earlier hours first)."""
    if not parts:
        return parse_objects([])
    # Empty frames left out: pandas would let their dtypes decide the result's.
    events = [part.events for part in parts if len(part.events)] or [parts[0].events]
    rejects = [part.rejects for part in parts if len(part.rejects)] or [parts[0].rejects]
    return ParsedEvents(
        pd.concat(events, ignore_index=True),
        pd.concat(rejects, ignore_index=True),
        sum(part.lines_read for part in parts),
        sum(part.objects_read for part in parts),
    )


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


def _usable_events(
    key: str, table: pa.Table, numbers: np.ndarray, received: Received
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """A parsed table's usable events, and the (line number, reason) of its rows that are not."""
    frame = _to_frame(table)
    frame["_source"] = key
    frame["_line"] = numbers
    frame, reason = _validate(frame, received)
    bad = reason.notna()
    refused = []
    if bad.any():
        refused = [(int(n), str(why)) for n, why in zip(frame.loc[bad, "_line"], reason[bad], strict=True)]
        frame = frame.loc[~bad]
    # What only validation needed goes before the window's objects pile up.
    return frame.drop(columns=["page_url", "_uuid_ok", "_collector_missing"]), refused


def _with_excerpts(key: str, refused: list[tuple[int, str]], lines: dict[int, bytes]) -> list[tuple]:
    """Rejects of the refused rows, with the excerpt of their line (`lines`: by line number)."""
    return [(key, number, why, _excerpt(lines[number])) for number, why in refused]


def _object_events(
    key: str,
    data: bytes,
    received: Received,
    max_object_bytes: int | None,
    bound_name: str = "events.max_object_megabytes",
) -> tuple[list[pd.DataFrame], list[tuple], int, int]:
    """One object's usable events (frames in row order), its rejects, its line count and the
    bytes of text it inflated to (at most `max_object_bytes`, the setting `bound_name`).

    The lines are found as offsets into the inflated text (never copied one by one); the other
    lines are blanked in place so that the JSON lines are one block for pyarrow (`read_run`: a
    good line is read at most three times, however many bad lines surround it). TSV and other
    lines, and JSON lines known to be bad, are handled one by one."""
    inflated = decompress(data, max_object_bytes)
    text, intact, too_large = inflated
    del inflated
    starts, ends, lone_cr = line_bounds(text, intact)
    if len(starts) and text[:3] == UTF8_BOM:
        starts[0] += 3  # written by some editors and exporters; not part of the first event
    # A line is JSON when its first byte is `{` (an empty line's "first byte" is the next line's).
    lengths = ends - starts
    byte = np.frombuffer(text, dtype=np.uint8)
    braced = (lengths > 0) & (byte[np.minimum(starts, len(text) - 1)] == ord("{"))
    # A JSON object ends with `}`: a line cut short (the usual bad line) goes the slow way at once
    # rather than failing a block pyarrow would then read again.
    last = byte[np.maximum(ends - 1, 0)]
    cr = last == ord("\r")
    last[cr] = byte[np.maximum(ends[cr] - 2, 0)]
    is_json = braced & (last == ord("}"))  # read by pyarrow; the other braced lines go the slow way
    del byte  # the text may become a bytearray below
    # Invalid UTF-8 inside a string is found by pyarrow only after a block is read, without a
    # row: such lines (rare) are found first and go the slow way too.
    for index in _undecodable_lines(text, starts):
        is_json[index] = False
    buffer = pa.py_buffer(text)

    def line(index: int) -> bytes:
        return bytes(text[starts[index] : ends[index]])

    tables: list[pa.Table] = []
    table_numbers: list[np.ndarray] = []
    rejects: list[tuple] = []
    # Rows built one by one, (record, line number, line): TSV lines, then JSON lines pyarrow refused.
    tsv_rows: list[tuple[dict, int, bytes]] = []
    json_rows: list[tuple[dict, int, bytes]] = []

    def slow_json(index: int, raw: bytes | None = None) -> None:
        raw = line(index) if raw is None else raw
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            rejects.append((key, index + 1, _invalid_json_reason(raw), _excerpt(raw)))
            return
        if not isinstance(obj, dict):
            rejects.append((key, index + 1, "invalid_json", _excerpt(raw)))
            return
        json_rows.append((_record_from_json(obj), index + 1, raw))

    json_lines = np.flatnonzero(is_json)
    others = np.flatnonzero(~is_json)
    other_lines = [(int(i), line(i)) for i in others.tolist()]
    if len(others):
        # The other lines (TSV, junk, blanks) become spaces in the text pyarrow reads, which it
        # skips as blank lines: the JSON lines around them are then one block, read in one call.
        if not isinstance(text, bytearray):
            text = bytearray(text)
            buffer = pa.py_buffer(text)
        for index, raw in other_lines:
            text[starts[index] : ends[index]] = b" " * len(raw)

    def read_run(first: int, stop: int, suspect: bool = False) -> None:
        """The JSON lines json_lines[first:stop] through pyarrow, a block of text at a time.

        pyarrow's threaded reader first; once a block is known to hold a bad line, the one-block
        reader, which stops at the bad line and names its row: the rows before it are read once
        more (known good) and the reading goes on after it. So each good line is read at most
        three times, however many bad lines there are."""
        while first < stop:
            block = buffer[starts[json_lines[first]] : ends[json_lines[stop - 1]]]
            table = None
            if not suspect and stop - first > 1:
                try:
                    table = _read_json_block(block)
                except (pa.ArrowInvalid, UnicodeDecodeError):
                    table = None
            try:
                if table is None or table.num_rows != stop - first:
                    table = _read_json_whole(block)
                if table.num_rows != stop - first:
                    raise pa.ArrowInvalid("rows and lines differ")
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                row = _failed_row(exc)
                failed_at = None if row is None or row >= stop - first else first + row
                if stop - first == 1:
                    slow_json(int(json_lines[first]))
                    return
                if failed_at is None or _reads_alone(line(json_lines[failed_at])):
                    # pyarrow does not say which line (a row count that differs, an escaped lone
                    # surrogate): each half is read on its own, down to the bad lines.
                    middle = (first + stop) // 2
                    read_run(first, middle, suspect=True)
                    read_run(middle, stop, suspect=True)
                    return
                if failed_at > first:
                    read_run(first, failed_at)  # known good
                slow_json(int(json_lines[failed_at]))
                first, suspect = failed_at + 1, True
                continue
            tables.append(table)
            table_numbers.append(json_lines[first:stop] + 1)
            return

    frames: list[pd.DataFrame] = []

    def to_frames() -> None:
        """The tables read so far as events: a slice's table is let go before the next is read."""
        if tables:
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            numbers = np.concatenate(table_numbers)
            tables.clear()
            table_numbers.clear()
            frame, refused = _usable_events(key, table, numbers, received)
            del table
            frames.append(frame)
            rejects.extend((key, n, why, _excerpt(line(n - 1))) for n, why in refused)

    count = len(starts)
    lines_read = int(braced.sum())
    # A block ends after a JSON line a lone CR ends (pyarrow splits lines at `\n` only; rare),
    # and every JSON_SLICE_LINES lines, so that a large object's tables and frames are never all
    # in memory at once.
    cuts = {*np.flatnonzero(lone_cr[json_lines]).tolist(), len(json_lines) - 1}
    cuts |= set(range(JSON_SLICE_LINES - 1, len(json_lines), JSON_SLICE_LINES))
    position = 0
    for cut in sorted(cuts):
        if position <= cut:
            read_run(position, cut + 1)
            to_frames()
        position = cut + 1
    for index, raw in other_lines:
        if braced[index]:
            slow_json(index, raw)  # `raw`: the text holds spaces in its place now
        elif raw.strip() or b"\t" in raw:  # a line of only tabs is a broken TSV line, not a blank
            lines_read += 1
            _other_line(key, index + 1, raw, rejects, tsv_rows)
    if too_large:
        message = f"the object decompresses past {max_object_bytes:,} bytes ({bound_name})"
        rejects.append((key, count + 1, "object_too_large", f"{message}: the rest is not read"))
        lines_read += 1
    elif not intact:
        rejects.append((key, count + 1, "truncated_gzip", "the gzip stream is damaged here"))
        lines_read += 1

    if tsv_rows or json_rows:
        records, numbers, lines = zip(*tsv_rows, *json_rows, strict=True)
        table = _table_from_records(list(records))
        frame, refused = _usable_events(key, table, np.asarray(numbers, dtype=np.int64), received)
        frames.append(frame)
        if refused:
            rejects.extend(_with_excerpts(key, refused, dict(zip(numbers, lines, strict=True))))
    return frames, rejects, lines_read, len(text)


def _other_line(key: str, number: int, raw: bytes, rejects: list[tuple], tsv_rows: list) -> None:
    """A line that is not JSON: an enriched TSV line, or a reject saying why not."""
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        rejects.append((key, number, "undecodable_bytes", _excerpt(raw)))
        return
    fields = text.split("\t")
    if len(fields) != TSV_FIELD_COUNT:
        rejects.append((key, number, _not_tsv_reason(text), text[:EXCERPT_CHARS]))
    else:
        tsv_rows.append((_record_from_tsv(fields), number, raw))


UTF8_SCAN_BYTES = 16 << 20


def _undecodable_lines(text: bytes | bytearray, starts: np.ndarray) -> list[int]:
    """Indexes of the lines holding bytes that are not UTF-8, in one pass over the text."""
    bad: list[int] = []
    view = memoryview(text)
    position = 0
    while position < len(text):
        piece = view[position : position + max(UTF8_SCAN_BYTES, 4)]  # a character is at most 4 bytes
        try:
            _, used = codecs.utf_8_decode(piece, "strict", position + len(piece) >= len(text))
        except UnicodeDecodeError as error:
            index = int(np.searchsorted(starts, position + error.start, side="right")) - 1
            if index >= 0:
                bad.append(index)
            following = starts[index + 1] if index + 1 < len(starts) else len(text)
            position = max(int(following), position + error.start + 1)
            continue
        position += max(used, 1)
    return bad


_FAILED_ROW = re.compile(r" in row (\d+)$")


def _failed_row(error: pa.ArrowInvalid) -> int | None:
    """The row pyarrow's JSON reader stopped at (0-based, within the block), when it says."""
    found = _FAILED_ROW.search(str(error))
    return int(found.group(1)) if found else None


def _reads_alone(raw: bytes) -> bool:
    """Whether pyarrow reads this line by itself (then a failure was not this line's)."""
    try:
        return _read_json_whole(raw).num_rows == 1
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return False


def _first_of_list(table: pa.Table, column: str, name: str) -> pa.Array:
    """`column[0].name` for a list-of-structs column (null where the list is null or empty)."""
    lists = table.column(column).combine_chunks()
    if lists.null_count == len(lists):
        return pa.nulls(len(lists), lists.type.value_type.field(name).type)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    starts = lists.offsets.to_numpy()[:-1]
    empty = lengths == 0
    indices = pa.array(np.where(empty, 0, starts), mask=empty)
    return lists.values.field(name).take(indices)


TIMESTAMP_PIECE = 4096


def _timestamps(text: pa.ChunkedArray) -> pd.Series:
    """ISO 8601 text to UTC timestamps; NaT where it does not parse."""
    utc = pa.timestamp("ns", tz="UTC")
    try:  # Arrow's cast is far faster than pandas' and takes every well-formed value
        return text.cast(utc).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Some value Arrow refuses: pandas (which also reads the odd forms) takes the pieces it is in.
    column = text.combine_chunks()
    pieces = []
    for start in range(0, len(column), TIMESTAMP_PIECE):
        piece = column.slice(start, TIMESTAMP_PIECE)
        try:
            pieces.append(piece.cast(utc).to_pandas())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pieces.append(pd.to_datetime(piece.to_pandas(), format="ISO8601", utc=True, errors="coerce"))
    return pd.concat(pieces, ignore_index=True)


def _clean_text(table: pa.Table) -> pa.Table:
    """Empty strings mean "not sent" in TSV; JSON lines should leave such keys out, but some
    senders write "" instead: both become null. A NUL character becomes U+FFFD: anyone can send
    one to a tracker, pandas compares strings only up to it and PostgreSQL cannot store it."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type):
            blank = pc.equal(column, "")
            if pc.any(blank).as_py():
                column = pc.if_else(blank, pa.scalar(None, pa.string()), column)
            column = without_nul(column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def without_nul(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The strings with each NUL character replaced by U+FFFD (the column itself when it has none)."""
    if pc.any(pc.match_substring(column, "\x00")).as_py():
        return pc.replace_substring(column, "\x00", "\ufffd")
    return column


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """Flatten a parsed table into the parsed-event columns."""
    table = _clean_text(table)
    spider = _first_of_list(table, IAB_SPIDERS, "spiderOrRobot")
    # Ids inside the contexts are strings of their own: they are cleaned as the columns are.
    ping = table.column(AMP_PAGE_PING)
    web_page_id = without_nul(_first_of_list(table, WEB_PAGE, "id"))
    amp_page_id = without_nul(_first_of_list(table, AMP_WEB_PAGE, "ampPageViewId"))
    frame = pd.DataFrame(
        {
            "event_id": table.column("event_id").to_pandas(),
            # Checked here, in Arrow, rather than row by row in Python.
            "_uuid_ok": pc.fill_null(
                pc.match_substring_regex(table.column("event_id"), UUID_PATTERN), False
            ).to_numpy(zero_copy_only=False),
            "event_name": pc.coalesce(table.column("event_name"), table.column("event")).to_pandas(),
            "app_id": table.column("app_id").to_pandas(),
            "platform": table.column("platform").to_pandas(),
            "domain_userid": table.column("domain_userid").to_pandas(),
            "domain_sessionid": table.column("domain_sessionid").to_pandas(),
            "amp_client_id": without_nul(_first_of_list(table, AMP_ID, "ampClientId")).to_pandas(),
            "page_view_id": pc.coalesce(web_page_id, amp_page_id).to_pandas(),
            "page_urlhost": table.column("page_urlhost").to_pandas(),
            "page_urlpath": table.column("page_urlpath").to_pandas(),
            "page_url": table.column("page_url").to_pandas(),
            "useragent": table.column("useragent").to_pandas(),
            "iab_spider": pd.array(spider.to_pylist(), dtype="boolean"),
            "amp_engaged_seconds": pc.struct_field(ping, "totalEngagedTime").to_pandas(),
            "collector_tstamp": _timestamps(table.column("collector_tstamp")),
            "_collector_missing": table.column("collector_tstamp").is_null().to_numpy(zero_copy_only=False),
            "dvce_created_tstamp": _timestamps(
                pc.coalesce(table.column("dvce_created_tstamp"), table.column("derived_tstamp"))
            ),
        }
    )
    return frame


def _validate(frame: pd.DataFrame, received: Received) -> tuple[pd.DataFrame, pd.Series]:
    """Parse timestamps and find rows that are not usable events; returns (frame, reason or NA)."""
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    collector, created = frame["collector_tstamp"], frame["dvce_created_tstamp"]
    # Missing path: derive it from the URL, as Snowplow's enrichment does.
    host_missing = frame["page_urlhost"].isna() & frame["page_url"].notna()
    path_missing = frame["page_urlpath"].isna() & frame["page_url"].notna()
    if host_missing.any() or path_missing.any():
        parts = frame.loc[host_missing | path_missing, "page_url"].str.extract(
            r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#:]*)(?::\d+)?([^?#]*)"
        )
        frame.loc[host_missing, "page_urlhost"] = parts.loc[host_missing[host_missing].index, 0]
        frame.loc[path_missing, "page_urlpath"] = parts.loc[path_missing[path_missing].index, 1].replace(
            "", None
        )
    is_page = frame["event_name"].isin(SNOWPLOW_PAGE_EVENTS)
    checks = [
        (is_page & (frame["page_urlpath"].isna() | (frame["page_urlpath"] == "")), "page_event_without_path"),
        (received.before is not None and (collector > received.before), "timestamp_in_future"),
        # Older than any event the window may still accept (1969: a zeroed clock); as a session's
        # start it would end that session's reading and travel on to later windows.
        (received.after is not None and (collector < received.after), "timestamp_in_past"),
        (collector.isna() & ~frame["_collector_missing"], "unparseable_timestamp"),
        (frame["_collector_missing"], "missing_timestamp"),
        (frame["event_name"].isna(), "missing_event_name"),
        (frame["event_id"].notna() & ~frame["_uuid_ok"], "malformed_event_id"),
        (frame["event_id"].isna(), "missing_event_id"),
    ]
    # Later checks win, so the most basic problem is the one reported.
    for mask, name in checks:
        if mask is not False:
            reason = reason.mask(mask.fillna(False).astype(bool), name)
    frame["dvce_created_tstamp"] = created.fillna(collector)  # in place: the frame is large
    return frame, reason


def _in_parallel(objects: Iterable[tuple[str, bytes]], received: Received, max_object_bytes: int | None):
    """(key, data, `_object_events`) of each object, in order, a few objects at a time."""
    with ThreadPoolExecutor(PARALLEL_OBJECTS) as pool:
        pending: deque = deque()
        for key, data in objects:
            pending.append((key, data, pool.submit(_object_events, key, data, received, max_object_bytes)))
            if len(pending) >= PARALLEL_OBJECTS:
                key, data, result = pending.popleft()
                yield key, data, result.result()
        while pending:
            key, data, result = pending.popleft()
            yield key, data, result.result()


@functools.cache
def _no_events() -> pd.DataFrame:
    """The parsed events of no line, with their columns and types (built once: every window's
    context and cleaning start from it, and building it runs the whole conversion)."""
    events, _ = _validate(_to_frame(JSON_SCHEMA.empty_table()), Received(None, None))
    return events.drop(columns=["page_url", "_uuid_ok", "_collector_missing"]).assign(
        _source=pd.Series(dtype=object), _line=pd.Series(dtype="int64")
    )


def parse_objects(
    objects: Iterable[tuple[str, bytes]],
    received_before: pd.Timestamp | None = None,
    max_object_bytes: int | None = DEFAULT_MAX_OBJECT_BYTES,
    received_after: pd.Timestamp | None = None,
    max_window_bytes: int | None = None,
) -> ParsedEvents:
    """Parse every line of the given (key, bytes) objects.

    `received_before`: a collector timestamp after it is implausible (clock or data error), and
    `received_after`: one before it is too old to use (`timestamp_in_past`).
    `max_object_bytes`: an object is read up to this much decompressed text (None: no bound); the
    complete lines before the bound are kept and the rest is one `object_too_large` line.
    `max_window_bytes`: the objects together, in the order given, likewise: the object that
    crosses it is read up to it, and each object after it is one `object_too_large` line.
    A damaged gzip tail counts as one unusable line.
    """
    frames: list[pd.DataFrame] = []
    rejects: list[tuple] = []
    lines_read = objects_read = inflated_total = 0
    received = Received(received_after, received_before)
    for key, data, (object_frames, object_rejects, object_lines, inflated) in _in_parallel(
        objects, received, max_object_bytes
    ):
        objects_read += 1
        if max_window_bytes is not None:
            left = max_window_bytes - inflated_total
            if left <= 0:  # read (a few objects run ahead) but past the bound: set aside whole
                message = f"the window's objects decompress past {max_window_bytes:,} bytes before it"
                rejects.append(
                    (key, 1, "object_too_large", f"{message} (events.max_window_megabytes): not read")
                )
                lines_read += 1
                continue
            if inflated > left:  # the object that crosses the bound: read again up to it
                object_frames, object_rejects, object_lines, inflated = _object_events(
                    key, data, received, left, "events.max_window_megabytes, with the objects before it"
                )
            inflated_total += inflated
        lines_read += object_lines
        rejects.extend(object_rejects)
        frames.extend(object_frames)
    events = pd.concat(frames, ignore_index=True) if frames else _no_events().copy()
    reject_frame = pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).astype(REJECT_DTYPES)
    reject_frame = reject_frame.sort_values(["source", "line_number"], kind="stable").reset_index(drop=True)
    return ParsedEvents(events, reject_frame, lines_read=lines_read, objects_read=objects_read)

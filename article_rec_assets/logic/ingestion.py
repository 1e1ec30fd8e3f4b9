"""Raw events: parse the Snowplow lines of a window's objects into one typed row per event.

Both formats Snowplow writes occur in the same files: analytics-SDK JSON lines (a line starting
with `{`) and enriched TSV (exactly 131 tab-separated fields). JSON lines go through pyarrow's
JSON reader, object by object; an object that pyarrow refuses (a bad line somewhere in it) is
parsed line by line so that the good lines are kept and each bad one is set aside with its
object, line number, reason and first 500 characters. Nothing is silently lost.

`clean_window` then makes the rows of the window's *own* hour folders into events the rest of the
platform can use, with the hour folders before the window as context only: duplicates already
delivered are dropped, readers and sessions are named, and each ping gets the reading time it adds
(so that a page view read across two windows is counted once).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from article_rec_assets.sites import EventSettings

TSV_FIELD_COUNT = 131
# Positions in the enriched TSV (CONTRACT.md section 2).
TSV_POSITIONS = {
    "app_id": 0,
    "platform": 1,
    "collector_tstamp": 3,
    "dvce_created_tstamp": 4,
    "event": 5,
    "event_id": 6,
    "domain_userid": 15,
    "page_url": 29,
    "page_urlhost": 33,
    "page_urlpath": 35,
    "useragent": 77,
    "domain_sessionid": 123,
    "derived_tstamp": 124,
    "event_name": 126,
}
TSV_CONTEXTS, TSV_UNSTRUCT = 52, 58
EXCERPT_CHARS = 500
# Snowplow's web tracker pings after a 5 s minimum visit, then once per heartbeat.
MIN_VISIT_SECONDS = 5
GZIP_CHUNK = 64 * 1024
JSON_BLOCK_BYTES = 4 << 20
JSON_FALLBACK_CHUNK = 256
JSON_SLICE_LINES = 20_000
# Bytes of an object's text split into lines at a time: all its lines at once, as separate bytes
# objects next to the text, would double the object's memory.
LINE_PIECE_BYTES = 8 << 20
# Objects decompressed and parsed at once (zlib and pyarrow release the GIL); more would only
# hold more decompressed text in memory on a 2-core machine.
PARALLEL_OBJECTS = 2

# Self-describing JSON as the analytics SDKs flatten it: `contexts_<vendor>_<name>_<major>`.
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB_SPIDERS = "contexts_com_iab_snowplow_spiders_and_robots_1"
# The same, as Iglu schema names inside the TSV's contexts and unstruct_event JSON.
IGLU_NAMES = {
    "com.snowplowanalytics.snowplow/web_page/": WEB_PAGE,
    "dev.amp.snowplow/amp_id/": AMP_ID,
    "dev.amp.snowplow/amp_web_page/": AMP_WEB_PAGE,
    "dev.amp.snowplow/amp_page_ping/": AMP_PAGE_PING,
    "com.iab.snowplow/spiders_and_robots/": IAB_SPIDERS,
}

_TEXT_FIELDS = (
    "app_id",
    "platform",
    "collector_tstamp",
    "dvce_created_tstamp",
    "derived_tstamp",
    "event",
    "event_name",
    "event_id",
    "domain_userid",
    "domain_sessionid",
    "page_url",
    "page_urlhost",
    "page_urlpath",
    "useragent",
)
JSON_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _TEXT_FIELDS]
    + [
        (WEB_PAGE, pa.list_(pa.struct([("id", pa.string())]))),
        (AMP_ID, pa.list_(pa.struct([("ampClientId", pa.string())]))),
        (AMP_WEB_PAGE, pa.list_(pa.struct([("ampPageViewId", pa.string())]))),
        (AMP_PAGE_PING, pa.struct([("totalEngagedTime", pa.float64())])),
        (IAB_SPIDERS, pa.list_(pa.struct([("spiderOrRobot", pa.bool_())]))),
    ]
)
_JSON_PARSE = pj.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")

PAGE_VIEW_EVENTS = ("page_view", "amp_page_view")
PING_EVENTS = ("page_ping", "amp_page_ping")
PAGE_EVENTS = PAGE_VIEW_EVENTS + PING_EVENTS
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# AMP cache URLs: /c/s/<publisher host>/<path> (or /v/s/ for the viewer), and a trailing /amp.
AMP_CACHE_PREFIX = re.compile(r"^/[cv]/s/([^/]+)(/.*)?$")
AMP_SUFFIX = re.compile(r"/amp/?$")

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


# ---------------------------------------------------------------------------------------------
# Bytes to lines


def gunzip_prefix(data: bytes) -> tuple[bytes | bytearray, bool]:
    """Decompress gzip members for as long as the stream is intact.

    Returns (what decompressed, whether the whole stream was intact). A truncated or corrupt
    stream keeps every byte that decompressed before the damage. The text grows in one buffer
    (a bytearray, which reads like bytes) rather than as pieces joined at the end.
    """
    out = bytearray()
    rest = data
    while rest:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        position = 0
        while position < len(rest) and not decompressor.eof:
            chunk = rest[position : position + GZIP_CHUNK]
            before = decompressor.copy()
            try:
                out += decompressor.decompress(chunk)
            except zlib.error:
                # Replay the damaged chunk byte by byte to keep what precedes the damage.
                for i in range(len(chunk)):
                    try:
                        out += before.decompress(chunk[i : i + 1])
                    except zlib.error:
                        break
                return out, False
            position += len(chunk)
        if not decompressor.eof:
            return out, False  # cut off mid-member
        # The next member (concatenated gzip files are valid gzip) starts after this one.
        rest = decompressor.unused_data + rest[position:]
    return out, True


def decompress(data: bytes) -> tuple[bytes | bytearray, bool]:
    """The object's text (gunzipped when it is gzip) and whether it was intact."""
    if data[:2] != b"\x1f\x8b":
        return data, True
    # The usual object, one intact gzip member, in one call into one growing buffer (zlib drops
    # the GIL meanwhile; gzip.decompress would briefly hold the text twice, its blocks and their join).
    try:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        text = decompressor.decompress(data)
        if decompressor.eof and not decompressor.unused_data:
            return text, True
        del text
    except zlib.error:
        pass
    # Several members, or damage: chunk by chunk, keeping what precedes the damage. gzip takes a
    # few things the chunked way calls damage (zero padding after a member), so it decides first.
    text, intact = gunzip_prefix(data)
    if intact:
        return text, True
    del text
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error):
        return gunzip_prefix(data)


def line_pieces(text: bytes | bytearray, intact: bool) -> Iterator[list[bytes]]:
    """The lines of an object's text (of a damaged stream only those complete before the damage),
    a piece of about LINE_PIECE_BYTES at a time, so that a large object's lines are never all
    held at once. Pieces are cut at newlines, where neither way of splitting (`splitlines` of an
    intact text, `split` of a damaged one) splits differently from splitting the whole."""
    if intact:
        end = len(text)
    else:
        end = text.rfind(b"\n")  # what follows the last newline is cut off by the damage
        if end <= 0:
            return
    position = 0
    while True:
        cut = text.find(b"\n", position + LINE_PIECE_BYTES, end)
        if cut < 0:
            piece = text[position:end]
            yield piece.splitlines() if intact else piece.split(b"\n")
            return
        yield text[position : cut + 1].splitlines() if intact else text[position:cut].split(b"\n")
        position = cut + 1


def complete_lines(text: bytes | bytearray, intact: bool) -> list[bytes]:
    """The lines of an object's text; of a damaged stream only those complete before the damage."""
    return [line for piece in line_pieces(text, intact) for line in piece]


def _pick_lines(text: bytes | bytearray, intact: bool, numbers: set[int]) -> dict[int, bytes]:
    """The lines with these (1-based) numbers, without splitting the whole text at once."""
    picked: dict[int, bytes] = {}
    first = 1
    for piece in line_pieces(text, intact):
        picked.update((n, piece[n - first]) for n in numbers if first <= n < first + len(piece))
        first += len(piece)
    return picked


# ---------------------------------------------------------------------------------------------
# Lines to rows


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


def _text(value) -> str | None:
    """A JSON value as the text column it belongs in (numbers and booleans as text, {} / [] not)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _record_from_json(obj: dict) -> dict:
    """A line pyarrow refused, but orjson read: keep what fits the schema."""
    record = {name: _text(obj.get(name)) for name in _TEXT_FIELDS}
    for column in (WEB_PAGE, AMP_ID, AMP_WEB_PAGE, IAB_SPIDERS):
        items = obj.get(column)
        record[column] = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None
    ping = obj.get(AMP_PAGE_PING)
    record[AMP_PAGE_PING] = ping if isinstance(ping, dict) else None
    return record


def _record_from_tsv(fields: list[str]) -> dict:
    record: dict = {name: (fields[pos] or None) for name, pos in TSV_POSITIONS.items()}
    for name in ("collector_tstamp", "dvce_created_tstamp", "derived_tstamp"):
        if record[name]:  # "2021-10-14 13:54:40.027000001" -> ISO 8601 in UTC
            record[name] = record[name].replace(" ", "T")[:26] + "Z"
    for position in (TSV_CONTEXTS, TSV_UNSTRUCT):
        if not fields[position]:
            continue
        try:
            payload = orjson.loads(fields[position])
        except orjson.JSONDecodeError:
            continue
        data = payload.get("data") if isinstance(payload, dict) else None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict):
                continue
            schema, body = str(item.get("schema", "")), item.get("data")
            for iglu, column in IGLU_NAMES.items():
                if iglu in schema and isinstance(body, dict):
                    if column == AMP_PAGE_PING:
                        record[column] = body
                    else:
                        record.setdefault(column, []).append(body)
    return record


def _table_from_records(records: list[dict]) -> pa.Table:
    columns = {}
    for f in JSON_SCHEMA:
        values = [r.get(f.name) for r in records]
        try:
            columns[f.name] = pa.array(values, type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[f.name] = pa.array([_coerce_nested(v, f.type) for v in values], type=f.type)
    return pa.table(columns, schema=JSON_SCHEMA)


def _coerce_nested(value, arrow_type: pa.DataType):
    """Drop nested values whose shape does not fit (e.g. a context whose fields are numbers)."""
    try:
        pa.array([value], type=arrow_type)
        return value
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _read_json_block(block: bytes) -> pa.Table:
    """pyarrow's reading of JSON lines; raises ArrowInvalid on anything it cannot take whole."""
    try:  # blocks of 4 MiB let pyarrow parse them on several threads
        read = pj.ReadOptions(block_size=min(JSON_BLOCK_BYTES, len(block) + 1))
        table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_JSON_PARSE)
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
        # A line longer than a block (a 10 MB line is legal): one block for the whole object.
        read = pj.ReadOptions(block_size=len(block) + 1, use_threads=False)
        table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_JSON_PARSE)
    # pyarrow's reader lets invalid UTF-8 inside strings through; such lines need the slow path.
    table.validate(full=True)
    return table


def _not_tsv_reason(line: str) -> str:
    """Why a line that is not a 131-field TSV line was refused: a JSON value that is not an
    object (an array, a string, a number) gets its own reason."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return "wrong_field_count"
    return "not_a_json_object"


def _usable_events(
    key: str, table: pa.Table, numbers: np.ndarray, received_before: pd.Timestamp | None
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """A parsed table's usable events, and the (line number, reason) of its rows that are not."""
    frame = _to_frame(table)
    frame["_source"] = key
    frame["_line"] = numbers
    frame, reason = _validate(frame, received_before)
    bad = reason.notna()
    refused = []
    if bad.any():
        refused = [(int(n), str(why)) for n, why in zip(frame.loc[bad, "_line"], reason[bad], strict=True)]
        frame = frame.loc[~bad]
    # What only validation needed goes before the window's objects pile up.
    return frame.drop(columns=["page_url", "_uuid_ok", "_collector_missing"]), refused


def _json_tables(
    json_lines: list[bytes], json_numbers: list[int], slow: list[tuple[dict, int, bytes]]
) -> Iterator[tuple[pa.Table, np.ndarray, list[bytes]]]:
    """pyarrow's tables of valid JSON lines, with their line numbers and lines.

    A slice it refuses (a field of an unexpected type) is built row by row (its rows go to `slow`),
    so one odd line costs its slice, not the object, the fast path."""
    slices = [(0, len(json_lines))]
    while slices:
        start, stop = slices.pop()
        try:
            table = _read_json_block(b"\n".join(json_lines[start:stop]))
            if table.num_rows != stop - start:
                raise pa.ArrowInvalid("rows and lines differ")
        except (pa.ArrowInvalid, UnicodeDecodeError):
            if stop - start > JSON_FALLBACK_CHUNK:
                middle = start + max(JSON_FALLBACK_CHUNK, (stop - start) // 8)
                slices.extend([(middle, stop), (start, middle)] if middle < stop else [])
                continue
            slow.extend(
                (_record_from_json(orjson.loads(raw)), number, raw)
                for raw, number in zip(json_lines[start:stop], json_numbers[start:stop], strict=True)
            )
            continue
        yield table, np.asarray(json_numbers[start:stop], dtype=np.int64), json_lines[start:stop]


def _with_excerpts(key: str, refused: list[tuple[int, str]], lines: dict[int, bytes]) -> list[tuple]:
    """Rejects of the refused rows, with the excerpt of their line (`lines`: by line number)."""
    return [(key, number, why, _excerpt(lines[number])) for number, why in refused]


def _object_events(
    key: str, data: bytes, received_before: pd.Timestamp | None
) -> tuple[list[pd.DataFrame], list[tuple], int]:
    """One object's usable events (frames in row order), its rejects, and its line count.

    Each parsed table becomes events as soon as it is read, so an object's text, its lines, its
    Arrow tables and its frames are never all in memory at once."""
    text, intact = decompress(data)
    if intact and text[:1] == b"{":
        # The common case, an intact object of JSON lines, is read whole by pyarrow. It fails on
        # any line that is not a JSON object (TSV included) and skips blank lines, so a row count
        # equal to the line count means every line was an event.
        try:
            table = _read_json_block(text)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            table = None
        count = text.count(b"\n") + (not text.endswith(b"\n"))
        if table is not None and table.num_rows == count:
            numbers = np.arange(1, count + 1, dtype=np.int64)
            frame, refused = _usable_events(key, table, numbers, received_before)
            del table
            lines = _pick_lines(text, intact, {number for number, _ in refused}) if refused else {}
            return [frame], _with_excerpts(key, refused, lines), count
        del table

    frames: list[pd.DataFrame] = []
    rejects: list[tuple] = []
    json_numbers: list[int] = []
    json_lines: list[bytes] = []
    # Rows built one by one, (record, line number, line): TSV lines, then JSON lines pyarrow refused.
    tsv_rows: list[tuple[dict, int, bytes]] = []
    json_rows: list[tuple[dict, int, bytes]] = []
    lines_read = number = 0

    def parse_json_lines():
        # Slices of JSON_SLICE_LINES valid JSON lines keep the joined copy handed to pyarrow small.
        for table, numbers, lines in _json_tables(json_lines, json_numbers, json_rows):
            frame, refused = _usable_events(key, table, numbers, received_before)
            frames.append(frame)
            if refused:
                rejects.extend(_with_excerpts(key, refused, dict(zip(numbers.tolist(), lines, strict=True))))
        json_lines.clear()
        json_numbers.clear()

    for piece in line_pieces(text, intact):
        for raw in piece:
            number += 1
            if raw[:1] == b"{":
                lines_read += 1
                # orjson finds the bad lines at a fraction of the cost of building rows from them.
                try:
                    orjson.loads(raw)
                except orjson.JSONDecodeError:
                    rejects.append((key, number, _invalid_json_reason(raw), _excerpt(raw)))
                    continue
                json_numbers.append(number)
                json_lines.append(raw)
                if len(json_lines) == JSON_SLICE_LINES:
                    parse_json_lines()
            elif raw.strip() or b"\t" in raw:  # a line of only tabs is a broken TSV line, not a blank
                lines_read += 1
                try:
                    line = raw.decode("utf-8").rstrip("\r")
                except UnicodeDecodeError:
                    rejects.append((key, number, "undecodable_bytes", _excerpt(raw)))
                    continue
                fields = line.split("\t")
                if len(fields) != TSV_FIELD_COUNT:
                    rejects.append((key, number, _not_tsv_reason(line), line[:EXCERPT_CHARS]))
                else:
                    tsv_rows.append((_record_from_tsv(fields), number, raw))
        del piece  # before the next piece is split
    if json_lines:
        parse_json_lines()
    del text
    if not intact:
        rejects.append((key, number + 1, "truncated_gzip", "the gzip stream is damaged here"))
        lines_read += 1
    if tsv_rows or json_rows:
        records, numbers, lines = zip(*tsv_rows, *json_rows, strict=True)
        table = _table_from_records(list(records))
        frame, refused = _usable_events(key, table, np.asarray(numbers, dtype=np.int64), received_before)
        frames.append(frame)
        if refused:
            rejects.extend(_with_excerpts(key, refused, dict(zip(numbers, lines, strict=True))))
    return frames, rejects, lines_read


def _invalid_json_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable_bytes"
    return "invalid_json"


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


def _timestamps(text: pa.ChunkedArray) -> pd.Series:
    """ISO 8601 text to UTC timestamps; NaT where it does not parse."""
    try:  # Arrow's cast is ~30x faster than pandas and takes every well-formed value
        return text.cast(pa.timestamp("ns", tz="UTC")).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_datetime(text.to_pandas(), format="ISO8601", utc=True, errors="coerce")


def _blank_to_null(table: pa.Table) -> pa.Table:
    """Empty strings mean "not sent" in TSV; JSON lines should leave such keys out, but some
    senders write "" instead. Treat both alike."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type):
            blank = pc.equal(column, "")
            if pc.any(blank).as_py():
                column = pc.if_else(blank, pa.scalar(None, pa.string()), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """Flatten a parsed table into the parsed-event columns."""
    table = _blank_to_null(table)
    spider = _first_of_list(table, IAB_SPIDERS, "spiderOrRobot")
    ping = table.column(AMP_PAGE_PING)
    web_page_id = _first_of_list(table, WEB_PAGE, "id")
    amp_page_id = _first_of_list(table, AMP_WEB_PAGE, "ampPageViewId")
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
            "amp_client_id": _first_of_list(table, AMP_ID, "ampClientId").to_pandas(),
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


def _validate(frame: pd.DataFrame, received_before: pd.Timestamp | None) -> tuple[pd.DataFrame, pd.Series]:
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
    is_page = frame["event_name"].isin(PAGE_EVENTS)
    checks = [
        (is_page & (frame["page_urlpath"].isna() | (frame["page_urlpath"] == "")), "page_event_without_path"),
        (received_before is not None and (collector > received_before), "timestamp_in_future"),
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


def _in_parallel(objects: Iterable[tuple[str, bytes]], received_before: pd.Timestamp | None):
    """`_object_events` of each object, in order, a few objects at a time."""
    with ThreadPoolExecutor(PARALLEL_OBJECTS) as pool:
        pending: deque = deque()
        for key, data in objects:
            pending.append(pool.submit(_object_events, key, data, received_before))
            if len(pending) >= PARALLEL_OBJECTS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def parse_objects(
    objects: Iterable[tuple[str, bytes]], received_before: pd.Timestamp | None = None
) -> ParsedEvents:
    """Parse every line of the given (key, bytes) objects.

    `received_before`: a collector timestamp after it is implausible (clock or data error).
    A damaged gzip tail counts as one unusable line.
    """
    frames: list[pd.DataFrame] = []
    rejects: list[tuple] = []
    lines_read = objects_read = 0
    for object_frames, object_rejects, object_lines in _in_parallel(objects, received_before):
        objects_read += 1
        lines_read += object_lines
        rejects.extend(object_rejects)
        frames.extend(object_frames)
    if frames:
        events = pd.concat(frames, ignore_index=True)
    else:
        events, _ = _validate(_to_frame(JSON_SCHEMA.empty_table()), None)
        events = events.drop(columns=["page_url", "_uuid_ok", "_collector_missing"]).assign(
            _source=pd.Series(dtype=object), _line=pd.Series(dtype="int64")
        )
    reject_frame = pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).astype(REJECT_DTYPES)
    reject_frame = reject_frame.sort_values(["source", "line_number"], kind="stable").reset_index(drop=True)
    return ParsedEvents(events, reject_frame, lines_read=lines_read, objects_read=objects_read)


# ---------------------------------------------------------------------------------------------
# Parsed rows to the window's events

CLEAN_DTYPES = {
    "event_id": "string",
    "event_name": "string",
    "app_id": "string",
    "platform": "string",
    "reader_id": "string",
    "session_id": "string",
    "page_view_id": "string",
    "page_host": "string",
    "page_path": "string",
    "useragent": "string",
    "iab_spider": "boolean",
    "collector_tstamp": "datetime64[ns, UTC]",
    "dvce_created_tstamp": "datetime64[ns, UTC]",
    "engaged_increment_seconds": "float64",
}


@dataclass
class CleanWindow:
    events: pd.DataFrame
    duplicates: dict[str, int] = field(default_factory=dict)


def map_unique(values: pd.Series, transform) -> pd.Series | pd.DataFrame:
    """`transform` applied to each distinct value once, spread back over the rows.

    A window has a million events but only thousands of distinct paths and user agents, so string
    work (regular expressions above all) is done per distinct value.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    result = transform(pd.Series(uniques, dtype=values.dtype if len(uniques) else "string"))
    taken = result.take(np.where(codes < 0, 0, codes)) if len(uniques) else result.reindex(range(len(codes)))
    taken.index = values.index
    missing = codes < 0
    if missing.any():
        taken = taken.mask(pd.Series(missing, index=values.index), other=pd.NA)
    return taken


def _normalize_unique_paths(paths: pd.Series) -> pd.DataFrame:
    clean = paths.str.split("?", n=1).str[0].str.split("#", n=1).str[0]
    cache = clean.str.extract(AMP_CACHE_PREFIX)
    clean = clean.where(cache[0].isna(), cache[1].fillna("/"))
    return pd.DataFrame({"cache_host": cache[0], "path": clean.str.replace(AMP_SUFFIX, "/", regex=True)})


def normalize_pages(hosts: pd.Series, paths: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The publisher's host and article path behind a page URL.

    Drops query and fragment, unwraps AMP-cache paths (`/c/s/<host>/...`, `/v/s/<host>/...`, whose
    inner host is the publisher's), and strips a trailing `/amp`.
    """
    pages = map_unique(paths.fillna("").astype(object), _normalize_unique_paths)
    host = hosts.where(pages["cache_host"].isna(), pages["cache_host"])
    return host.str.lower().astype("string"), pages["path"].astype("string")


def _infer_sessions(frame: pd.DataFrame, timeout: pd.Timedelta) -> pd.Series:
    """`domain_sessionid`, or where the tracker sent none (AMP), a new session per reader after
    `timeout` of inactivity, named after the reader and the session's first event time."""
    session = frame["domain_sessionid"].astype("string")
    missing = session.isna() & frame["reader_id"].notna()
    if not missing.any():
        return session
    part = frame.loc[missing, ["reader_id", "dvce_created_tstamp"]].sort_values(
        ["reader_id", "dvce_created_tstamp"], kind="stable"
    )
    gap = part.groupby("reader_id", sort=False)["dvce_created_tstamp"].diff()
    starts = gap.isna() | (gap > timeout)
    start_time = part["dvce_created_tstamp"].where(starts).ffill()
    names = part["reader_id"] + ":" + (start_time.astype("int64") // 1_000_000_000).astype(str)
    session.loc[names.index] = names.astype("string")
    return session


def _engaged_increments(frame: pd.DataFrame, heartbeat: int, min_visit: int) -> pd.Series:
    """Reading seconds each ping adds, in the order of `frame` (context rows first).

    Web (Snowplow's web model): a page view's engaged time is heartbeat x (distinct heartbeat
    windows - 1) + min_visit. So its first heartbeat window adds `min_visit`, every further new one
    adds `heartbeat`, and a ping in a window already seen adds nothing. AMP: pings carry the
    cumulative engaged time, so each adds what it raises the page view's maximum by.
    """
    increments = pd.Series(0.0, index=frame.index)
    key = frame["page_view_id"].astype(object)
    no_id = key.isna()
    if no_id.any():  # trackers without a page view id: the page within the reader's session
        rows = frame[no_id]
        key[no_id] = (
            rows["reader_id"].fillna("")
            + "|"
            + rows["session_id"].fillna("")
            + "|"
            + rows["page_path"].fillna("")
        )
    web = frame["event_name"] == "page_ping"
    if web.any():
        pings = pd.DataFrame(
            {
                "key": key[web],
                "window": (frame.loc[web, "dvce_created_tstamp"].astype("int64") // 1_000_000_000)
                // heartbeat,
            }
        )
        new_window = ~pings.duplicated(["key", "window"])
        first_window = new_window & ~pings["key"].where(new_window).duplicated()
        increments[web] = np.where(
            first_window, float(min_visit), np.where(new_window, float(heartbeat), 0.0)
        )
    amp = (frame["event_name"] == "amp_page_ping") & frame["amp_engaged_seconds"].notna()
    if amp.any():
        total = frame.loc[amp, "amp_engaged_seconds"].astype("float64")
        amp_key = key[amp]
        before = total.groupby(amp_key, sort=False).cummax().groupby(amp_key, sort=False).shift(1).fillna(0.0)
        increments[amp] = (total - before).clip(lower=0.0)
    return increments


def clean_window(window: ParsedEvents, context: ParsedEvents, settings: EventSettings) -> CleanWindow:
    """The window's own events, once each, with reader, session, page and added reading time.

    `context` holds the events of the hour folders before the window. They are never emitted;
    they tell which events were delivered before (duplicates) and which heartbeats were counted.
    """
    # Arrival order: collector time, then object and line (objects come sorted by key). Copies of
    # one event are identical, so which copy is kept does not change the result.
    # The order and the duplicates are found on two columns, so that the window's rows are copied
    # once (the kept ones, in order) rather than once per step.
    seen_before = context.events.sort_values("collector_tstamp", kind="stable").drop_duplicates("event_id")
    order = window.events["collector_tstamp"].reset_index(drop=True).sort_values(kind="stable").index
    event_ids = window.events["event_id"].take(order)
    in_window_dups = event_ids.duplicated().to_numpy()
    earlier = event_ids.isin(seen_before["event_id"]).to_numpy() & ~in_window_dups
    own = window.events.take(order[~(in_window_dups | earlier)])
    duplicates = {
        "duplicate_in_window": int(in_window_dups.sum()),
        "delivered_in_earlier_window": int(earlier.sum()),
    }

    both = pd.concat([seen_before, own], ignore_index=True)
    del own
    both["_own"] = np.arange(len(both)) >= len(seen_before)
    both["reader_id"] = both["domain_userid"].fillna(both["amp_client_id"]).astype("string")
    both["page_host"], both["page_path"] = normalize_pages(both["page_urlhost"], both["page_urlpath"])
    both["session_id"] = _infer_sessions(both, pd.Timedelta(minutes=settings.session_timeout_minutes))
    both["engaged_increment_seconds"] = _engaged_increments(
        both, settings.ping_interval_seconds, MIN_VISIT_SECONDS
    )
    events = both.loc[both["_own"], list(CLEAN_DTYPES)]
    del both
    events = events.astype(CLEAN_DTYPES)
    events.index = pd.RangeIndex(len(events))  # as reset_index(drop=True), without another copy
    return CleanWindow(events, duplicates)

"""Raw events: parse the Snowplow lines of one window's objects into a typed table.

Both formats Snowplow writes occur in the same files: analytics-SDK JSON lines (a line starting
with `{`) and enriched TSV (exactly 131 tab-separated fields). A line that is not a usable event is
never fatal: it is set aside with its object, line number, reason and first 500 characters.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
import pandas as pd

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
TEXT_COLUMNS = (
    "event_id",
    "event_name",
    "app_id",
    "platform",
    "domain_userid",
    "domain_sessionid",
    "page_urlhost",
    "page_urlpath",
    "useragent",
)
TIME_COLUMNS = ("collector_tstamp", "dvce_created_tstamp")
EVENT_COLUMNS = (*TEXT_COLUMNS, *TIME_COLUMNS)
REJECT_COLUMNS = ("source", "line_number", "reason", "excerpt")
EXCERPT_CHARS = 500
GZIP_CHUNK = 64 * 1024


@dataclass
class ParsedEvents:
    """Events parsed from some objects, and the lines set aside."""

    events: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int = 0
    objects_read: int = 0
    reject_counts: dict[str, int] = field(default_factory=dict)


def _tsv_record(fields: list[str]) -> dict[str, str | None]:
    record = {name: (fields[pos] or None) for name, pos in TSV_POSITIONS.items()}
    # Nanosecond fractions ("13:54:40.027000001") and a space separator: normalise to ISO.
    for name in ("collector_tstamp", "dvce_created_tstamp", "derived_tstamp"):
        if record[name]:
            record[name] = record[name].replace(" ", "T")[:26]
    return record


def parse_line(line: str) -> dict | str:
    """One event as a dict of raw fields, or the reason it is not one."""
    if line.startswith("{"):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return "invalid_json"
        if not isinstance(record, dict):
            return "not_a_json_object"
    else:
        fields = line.split("\t")
        if len(fields) != TSV_FIELD_COUNT:
            return "wrong_field_count"
        record = _tsv_record(fields)
    if not record.get("event_id"):
        return "missing_event_id"
    if not (record.get("event_name") or record.get("event")):
        return "missing_event_name"
    if not record.get("collector_tstamp"):
        return "missing_timestamp"
    return record


def gunzip_prefix(data: bytes) -> tuple[bytes, bool]:
    """Decompress gzip members for as long as the stream is intact.

    Returns (what decompressed, whether the whole stream was intact). A truncated or corrupt
    stream keeps every byte that decompressed before the damage.
    """
    out: list[bytes] = []
    rest = data
    while rest:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        position = 0
        while position < len(rest) and not decompressor.eof:
            chunk = rest[position : position + GZIP_CHUNK]
            before = decompressor.copy()
            try:
                out.append(decompressor.decompress(chunk))
            except zlib.error:
                # Replay the damaged chunk byte by byte to keep what precedes the damage.
                for i in range(len(chunk)):
                    try:
                        out.append(before.decompress(chunk[i : i + 1]))
                    except zlib.error:
                        break
                return b"".join(out), False
            position += len(chunk)
        if not decompressor.eof:
            return b"".join(out), False  # cut off mid-member
        # The next member (concatenated gzip files are valid gzip) starts after this one.
        rest = decompressor.unused_data + rest[position:]
    return b"".join(out), True


def _lines(data: bytes) -> Iterable[tuple[int, bytes | None]]:
    """Lines with 1-based numbers; a damaged gzip stream yields (n, None) once, after the
    complete lines that precede the damage."""
    if data[:2] != b"\x1f\x8b":
        yield from enumerate(data.splitlines(), start=1)
        return
    text, intact = gunzip_prefix(data)
    if intact:
        yield from enumerate(text.splitlines(), start=1)
        return
    complete, _, _ = text.rpartition(b"\n")
    lines = complete.split(b"\n") if complete else []
    yield from enumerate(lines, start=1)
    yield len(lines) + 1, None


def parse_objects(objects: Iterable[tuple[str, bytes]]) -> ParsedEvents:
    """Parse every line of the given (key, bytes) objects."""
    records: list[dict] = []
    rejects: list[tuple[str, int, str, str]] = []
    lines_read = objects_read = 0
    for key, data in objects:
        objects_read += 1
        for number, raw in _lines(data):
            if raw is None:
                rejects.append((key, number, "truncated_gzip", ""))
                continue
            if not raw.strip():
                continue
            lines_read += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                rejects.append(
                    (key, number, "undecodable_bytes", raw[:EXCERPT_CHARS].decode("utf-8", "replace"))
                )
                continue
            result = parse_line(line.rstrip("\r"))
            if isinstance(result, str):
                rejects.append((key, number, result, line[:EXCERPT_CHARS]))
            else:
                result["_source"], result["_line"] = key, number
                records.append(result)
    events, bad_times = _events_frame(records)
    rejects.extend(bad_times)
    reject_frame = pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).astype(
        {"source": "string", "line_number": "int64", "reason": "string", "excerpt": "string"}
    )
    return ParsedEvents(
        events=events,
        rejects=reject_frame,
        lines_read=lines_read,
        objects_read=objects_read,
        reject_counts=dict(Counter(r[2] for r in rejects)),
    )


def _events_frame(records: list[dict]) -> tuple[pd.DataFrame, list[tuple[str, int, str, str]]]:
    frame = pd.DataFrame.from_records(
        records, columns=[*EVENT_COLUMNS, "event", "page_url", "_source", "_line"]
    )
    frame["event_name"] = frame["event_name"].fillna(frame["event"])
    frame["page_urlhost"] = frame["page_urlhost"].astype(object)  # may be all-null before filling
    host_missing = frame["page_urlhost"].isna() & frame["page_url"].notna()
    frame.loc[host_missing, "page_urlhost"] = frame.loc[host_missing, "page_url"].map(
        lambda url: urlsplit(url).hostname
    )
    for name in TIME_COLUMNS:
        frame[name] = pd.to_datetime(frame[name], format="ISO8601", utc=True, errors="coerce")
    frame["dvce_created_tstamp"] = frame["dvce_created_tstamp"].fillna(frame["collector_tstamp"])
    bad = frame["collector_tstamp"].isna()
    bad_times = [
        (src, int(line), "unparseable_timestamp", "")
        for src, line in zip(frame.loc[bad, "_source"], frame.loc[bad, "_line"], strict=True)
    ]
    frame = frame.loc[~bad, list(EVENT_COLUMNS)].astype({c: "string" for c in TEXT_COLUMNS})
    frame["collector_tstamp"] = frame["collector_tstamp"].astype("datetime64[ns, UTC]")
    frame["dvce_created_tstamp"] = frame["dvce_created_tstamp"].astype("datetime64[ns, UTC]")
    frame = frame.sort_values(["collector_tstamp", "event_id"], kind="stable").reset_index(drop=True)
    return frame, bad_times

"""The ground truth of a generated bucket: what a correct parser must find in it.

Every line the generator writes carries a serial number into `LineRecords`: what the line is
(event name, category, lateness, TSV, ... or the reason it is malformed), its page view and a
value. A duplicate copy shares its original's serial. The truth is counted from those records over
the lines a reader can actually get back (a truncated object keeps only its complete lines before
the damage), so it cannot drift from the bytes.

Conventions:
- `lines`, `hour_folders`, `events_per_event_name` and `tsv.lines` count readable lines,
  duplicate copies included;
- every other event count (`distinct_events_per_event_name`, bots, staging, AMP, late, TSV
  events, ...) counts distinct events (`event_id`s) among readable lines: what is left after
  dropping duplicates;
- a duplicate's "extra copy" is every readable line of an event after its first one (in
  hour-folder order, then line order); it is "in a later folder" when its folder is later than
  the first copy's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from article_rec_demo.generator.noise import MALFORMED_REASONS

HEARTBEAT_SECONDS = 10
MIN_VISIT_SECONDS = 5
EVENT_NAMES = ("page_view", "page_ping", "amp_page_view", "amp_page_ping")
# Categories with a fixed code; internal hosts get the next codes, as `host:<host>`.
CATEGORIES = ("human", "amp", "bot:ua", "bot:iab", "bot:empty_ua")
# Heartbeat windows of one page view lie within this many of each other (about 30 years).
_WINDOW_SPAN = 10**8
# Bits of a line's code.
_NAME_BITS = 0b11
_CATEGORY_SHIFT, _CATEGORY_BITS = 2, 0b1111
_LATE_SHIFT = 6
TSV_BIT = 1 << 8
IAB_HUMAN_BIT = 1 << 9
MALFORMED_BIT = 1 << 10
_REASON_SHIFT = 11


def event_code(name: int, category: int, late: int = 0, iab_human: bool = False) -> int:
    """The code of an event line: its name (index in EVENT_NAMES), category (index in the
    list of categories), lateness (0 on time, 1 collected 2-5 h late, 2 more than 72 h late) and
    whether it carries the IAB context with spiderOrRobot false; add TSV_BIT for a TSV line."""
    return name | category << _CATEGORY_SHIFT | late << _LATE_SHIFT | (IAB_HUMAN_BIT if iab_human else 0)


def malformed_code(reason: str) -> int:
    return MALFORMED_BIT | MALFORMED_REASONS.index(reason) << _REASON_SHIFT


@dataclass
class LineRecords:
    """What each line is, by serial number (the tag of a line is its serial).

    `page_view`: index in the page-view truth, -1 when it is not a human article page view;
    `value`: dvce_created_tstamp in epoch seconds for web pings, totalEngagedTime for AMP
    pings, else 0."""

    code: list[int] = field(default_factory=list)
    page_view: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self, code: int, page_view: int = -1, value: float = 0.0) -> int:
        self.code.append(code)
        self.page_view.append(page_view)
        self.value.append(value)
        return len(self.code) - 1


class PageViewRow(NamedTuple):
    page_view_id: str
    reader_id: str
    session_id: str
    external_id: str
    day: int  # days since 1970-01-01 (UTC) of the page view's dvce_created_tstamp
    is_amp: bool
    too_late: bool


@dataclass
class WrittenObject:
    key: str  # relative to the bucket folder
    folder: str
    lines: list[tuple]  # (sort key, bytes, serial in LineRecords)
    readable: int  # lines a reader gets back
    truncation: dict | None = None
    size: int = 0


PAGE_VIEW_SCHEMA = pa.schema(
    [
        ("page_view_id", pa.string()),
        ("reader_id", pa.string()),
        ("session_id", pa.string()),
        ("external_id", pa.string()),
        ("page_view_day", pa.date32()),
        ("pings_written", pa.int64()),
        ("engaged_seconds", pa.int64()),
        ("is_amp", pa.bool_()),
        ("view_written", pa.bool_()),
        ("too_late", pa.bool_()),
    ]
)


def count_truth(
    objects: list[WrittenObject], records: LineRecords, page_views: list[PageViewRow], categories: list[str]
) -> tuple[dict, pa.Table]:
    """The counts of the ground truth, and the table of human article page views written."""
    all_codes = np.array(records.code, dtype=np.int64)
    folder_names = sorted({o.folder for o in objects})
    folder_index = {name: i for i, name in enumerate(folder_names)}
    per_folder: dict[str, dict] = {
        name: {"objects": [], "lines_written": 0, "lines_readable": 0, "quarantined": {}}
        for name in folder_names
    }
    parts: list[np.ndarray] = []
    folder_parts: list[np.ndarray] = []
    for obj in objects:
        folder = per_folder[obj.folder]
        folder["objects"].append(obj.key)
        folder["lines_written"] += len(obj.lines)
        folder["lines_readable"] += obj.readable
        serials = np.fromiter(map(itemgetter(2), obj.lines[: obj.readable]), np.int64, count=obj.readable)
        parts.append(serials)
        folder_parts.append(np.full(obj.readable, folder_index[obj.folder]))
        bad = _reasons(all_codes[serials])
        if bad:
            merged = {
                r: folder["quarantined"].get(r, 0) + bad.get(r, 0) for r in {*bad, *folder["quarantined"]}
            }
            folder["quarantined"] = dict(sorted(merged.items()))
    serials = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    folders = np.concatenate(folder_parts) if parts else np.zeros(0, dtype=np.int64)
    quarantined = _reasons(all_codes[serials])

    is_event = (all_codes[serials] & MALFORMED_BIT) == 0
    serials, folders = serials[is_event], folders[is_event]
    code = all_codes[serials]
    # The first readable copy of each event (np.unique returns first positions).
    _, first_at = np.unique(serials, return_index=True)
    first = np.zeros(len(serials), dtype=bool)
    first[first_at] = True
    first_folder = np.zeros(len(all_codes), dtype=np.int64)
    first_folder[serials[first_at]] = folders[first_at]
    extra_later = int((folders[~first] > first_folder[serials[~first]]).sum())

    name = code & _NAME_BITS
    category = (code >> _CATEGORY_SHIFT) & _CATEGORY_BITS
    late = code >> _LATE_SHIFT & 0b11

    def per_name(mask: np.ndarray) -> dict[str, int]:
        counts = np.bincount(name[mask], minlength=len(EVENT_NAMES))
        return {EVENT_NAMES[i]: int(k) for i, k in enumerate(counts) if k}

    per_category = np.bincount(category[first], minlength=len(categories))
    by_category = {c: int(per_category[i]) for i, c in enumerate(categories)}
    per_late = np.bincount(late[first], minlength=3)

    n = len(page_views)
    distinct = serials[first]
    distinct_name = name[first]
    pv = np.array(records.page_view, dtype=np.int64)[distinct]
    value = np.array(records.value, dtype=np.float64)[distinct]
    ours = pv >= 0
    is_view = ours & ((distinct_name == 0) | (distinct_name == 2))
    view_written = np.zeros(n, dtype=bool)
    view_written[pv[is_view]] = True
    pings = np.bincount(pv[ours & ~is_view], minlength=n)
    web_ping = ours & (distinct_name == 1)
    # Distinct heartbeat windows among each web page view's pings, from the written milliseconds.
    keys = (
        pv[web_ping] * _WINDOW_SPAN
        + np.round(value[web_ping] * 1000).astype(np.int64) // (HEARTBEAT_SECONDS * 1000) % _WINDOW_SPAN
    )
    keys.sort()
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    windows = np.bincount(keys // _WINDOW_SPAN, minlength=n)
    amp_ping = ours & (distinct_name == 3)
    amp_engaged = np.zeros(n, dtype=np.int64)
    np.maximum.at(amp_engaged, pv[amp_ping], value[amp_ping].astype(np.int64))
    is_amp = np.fromiter(map(itemgetter(5), page_views), bool, count=n)
    web_engaged = np.where(windows > 0, HEARTBEAT_SECONDS * (windows - 1) + MIN_VISIT_SECONDS, 0)
    engaged = np.where(is_amp, amp_engaged, web_engaged)
    rows = np.flatnonzero(view_written | (pings > 0))
    listed = [page_views[i] for i in rows.tolist()]
    table = pa.table(
        {
            "page_view_id": [p.page_view_id for p in listed],
            "reader_id": [p.reader_id for p in listed],
            "session_id": [p.session_id for p in listed],
            "external_id": [p.external_id for p in listed],
            "page_view_day": pa.array(np.array([p.day for p in listed], dtype=np.int32), type=pa.date32()),
            "pings_written": pings[rows],
            "engaged_seconds": engaged[rows],
            "is_amp": is_amp[rows],
            "view_written": view_written[rows],
            "too_late": [p.too_late for p in listed],
        },
        schema=PAGE_VIEW_SCHEMA,
    )

    lines_written = sum(len(o.lines) for o in objects)
    lines_readable = sum(o.readable for o in objects)
    amp_rows = int(is_amp[rows].sum())
    distinct_names = per_name(first)
    return {
        "lines": {
            "written": lines_written,
            "readable": lines_readable,
            "lost_to_truncation": lines_written - lines_readable,
        },
        "hour_folders": per_folder,
        "events_per_event_name": per_name(np.ones(len(serials), dtype=bool)),
        "distinct_events_per_event_name": distinct_names,
        "quarantined": {"total": sum(quarantined.values()), "by_reason": quarantined},
        "truncated_objects": [o.truncation for o in objects if o.truncation is not None],
        "empty_objects": sorted(o.key for o in objects if o.size == 0),
        "duplicates": {
            "extra_copies": int((~first).sum()),
            "extra_copies_in_later_folder": extra_later,
        },
        "human_web_events": by_category["human"],
        "bots": {kind: by_category[f"bot:{kind}"] for kind in ("ua", "iab", "empty_ua")},
        "iab_not_robot_events": int((code[first] & IAB_HUMAN_BIT > 0).sum()),
        "staging": {
            c.removeprefix("host:"): k for c, k in sorted(by_category.items()) if c.startswith("host:")
        },
        "amp": {
            "page_views": distinct_names.get("amp_page_view", 0),
            "pings": distinct_names.get("amp_page_ping", 0),
            "readers": len({p.reader_id for p in listed if p.is_amp}),
        },
        "late": {"late_events": int(per_late[1]), "too_late_events": int(per_late[2])},
        "tsv": {"lines": int((code & TSV_BIT > 0).sum()), "events": int((code[first] & TSV_BIT > 0).sum())},
        "page_views": {
            "rows": len(rows),
            "amp_rows": amp_rows,
            "web_rows": len(rows) - amp_rows,
            "rows_without_view": len(rows) - int(view_written[rows].sum()),
            "too_late_rows": sum(p.too_late for p in listed),
            "pings_written": int(pings[rows].sum()),
            "engaged_seconds": int(engaged[rows].sum()),
        },
    }, table


def _reasons(codes: np.ndarray) -> dict[str, int]:
    """Malformed lines per reason among the given codes."""
    bad = codes[(codes & MALFORMED_BIT) != 0] >> _REASON_SHIFT
    if not len(bad):
        return {}
    counts = np.bincount(bad, minlength=len(MALFORMED_REASONS))
    return {MALFORMED_REASONS[i]: int(k) for i, k in enumerate(counts) if k}

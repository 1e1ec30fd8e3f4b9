"""GA4's BigQuery export as raw events: the same rows (`cleaning.CLEAN_DTYPES`) the Snowplow path
gives, so that sessions, the matrix and everything after it do not know the difference.

Where a window's events are: GA4 writes a day's events into `events_YYYYMMDD` (the day in the
property's time zone), rewrites it for up to 3 days as late hits arrive, and streams the day so
far into `events_intraday_YYYYMMDD`, which the daily table replaces. A window reads, for each
property date it overlaps, the daily table's files where there are any, else the intraday
table's, and keeps the events timed within it: never both tables of a day, so nothing is counted
twice when one replaces the other, and the same files always give the same rows.

Who and where: reader = `user_pseudo_id`; session = reader + `ga_session_id`; page =
`page_location` (query, fragment and AMP forms as for Snowplow, `cleaning.normalize_pages`).

Reading time: GA4 reports `engagement_time_msec` as the engaged time since the previous report,
on the next event collected, whatever it is ("[GA4] User engagement"). A `user_engagement` (sent
as the reader leaves or hides the page) or a `scroll` reports time spent on its own page; so does
any other event carrying time (a `click`, a `file_download`, a form or custom event): the event
itself is dropped and counted, its time becomes a `user_engagement` row of its page. A
`page_view` that carries time reports the page the reader just left. A GA4 session spans the
reader's tabs, so the session's previous event may be another tab's: the page left is the page
in the page view's `page_referrer` when the session showed that page before; else the session's
previous event's page (in the day's tables read); else the referrer's page when it is on the
site (one of its `allowed_hosts`, or the page view's own host where it lists none); else the
time is not credited and counted as unattributed. Such a page view gives two rows: the page
view, and a `user_engagement` row with that time on the page left (its id derived from the page
view's). For example, a reader reads A in tab 1, opens B from it in tab 2 (referrer A), goes
back to tab 1 and after 40 s more on A follows a link to C: C's page view (referrer A) carries
40 s, and they go to A, not to B, the session's previous event's page.

Order: a session's events by time; events of one microsecond (a page view and the first scroll
of its page share one often) by the export's batch fields (`batch_page_id`, `batch_ordering_id`,
`batch_event_index`: the order the page sent them in), then by id.

Bad input: a line that is not a JSON object, or whose `event_name`, `event_timestamp` or
`event_params` cannot be read, is quarantined with its object, line and reason, as is an
engagement time above the site's `ga4.max_engagement_seconds`. GA4 has no event id: an event is
identified by what GA4 keeps stable across its copies (reader, session, time, name, batch fields,
page), so a copy (a file delivered twice, a stale shard beside its rewritten copy, the params in
another order) is dropped and counted. Other event names are counted and dropped. A NUL
character in a text becomes U+FFFD, as on the Snowplow path. A day's table that loses files
between their listing and their reading (GA4 replacing it) fails the window rather than reading
half of it.
GA4 removes known bots before the export; what it keeps of the device (browser, version, system,
category) stands in the user-agent column, so the site's bot patterns still apply to it.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd

from article_rec_assets.ingestion.cleaning import CLEAN_DTYPES, normalize_pages, session_starts
from article_rec_assets.ingestion.compression import complete_lines, decompress
from article_rec_assets.ingestion.formats import GA4_ENGAGEMENT_EVENTS, _invalid_json_reason, _text
from article_rec_assets.ingestion.parsing import REJECT_COLUMNS, REJECT_DTYPES, _excerpt
from article_rec_assets.ingestion.state import CarriedState, reading_state
from article_rec_assets.settings.sites import EventSettings, GA4Settings

PAGE_VIEW = "page_view"
GA4_EVENTS = (PAGE_VIEW, *GA4_ENGAGEMENT_EVENTS)
DAILY, INTRADAY = "events", "events_intraday"
PREVIOUS_PAGE = ":previous_page"

# A record's columns once read (one row per usable GA4 event of the kinds kept).
RECORD_DTYPES = {
    "event_id": "string",
    "event_name": "string",
    "event_us": "int64",  # event_timestamp: microseconds since the epoch, UTC
    "user_pseudo_id": "string",
    "ga_session_id": "string",
    "page_location": "string",
    "page_referrer": "string",
    "engagement_msec": "float64",
    "device": "string",
    "platform": "string",
    "stream_id": "string",
    # The export's order of a page's events (INT64, missing in exports from before 2024): a
    # page's id, its batches' order, an event's place in its batch.
    "batch_page_id": "Int64",
    "batch_ordering_id": "Int64",
    "batch_event_index": "Int64",
    "source": "string",
    "line_number": "int64",
}
DEFAULT_MAX_ENGAGEMENT_SECONDS: int = GA4Settings.model_fields["max_engagement_seconds"].default
# event_timestamp outside this span is not a real event time (ms or ns written as us, a zero).
_EARLIEST_US = 946_684_800_000_000  # 2000-01-01
_LATEST_US = 4_102_444_800_000_000  # 2100-01-01


def property_dates(start: datetime, end: datetime, timezone: str) -> list[date]:
    """The dates (in the property's time zone) whose tables hold events of [start, end)."""
    zone = ZoneInfo(timezone)
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# GA4 rewrites a day's daily table for up to this many days after the day.
REWRITE_DAYS = 3


def windows_of_date(day: date, timezone: str, window_hours: int) -> list[datetime]:
    """The starts (UTC) of the windows that hold some of a property date's events."""
    zone = ZoneInfo(timezone)
    first = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    last = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    start = first.replace(hour=first.hour - first.hour % window_hours, minute=0, second=0, microsecond=0)
    starts = []
    while start < last:
        starts.append(start)
        start += timedelta(hours=window_hours)
    return starts


def recent_dates(now: datetime, timezone: str, days: int = REWRITE_DAYS) -> list[date]:
    """The property dates GA4 may still rewrite at `now`: the last `days` before today."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return [today - timedelta(days=i) for i in range(days, 0, -1)]


def table_folder(settings: GA4Settings, table: str, day: date) -> str:
    """A day table's folder in the bucket: `<prefix>/events_YYYYMMDD` or `.../events_intraday_...`."""
    return f"{settings.prefix.strip('/')}/{table}_{day:%Y%m%d}"


def tables_to_read(
    keys_in: Callable[[str], list[str]], settings: GA4Settings, start: datetime, end: datetime
) -> dict[date, tuple[str, str]]:
    """For each property date of the window: (table, folder), the daily table where it has files,
    else the intraday one (which may be empty: a day without events yet)."""
    chosen = {}
    for day in property_dates(start, end, settings.timezone):
        daily = table_folder(settings, DAILY, day)
        chosen[day] = (DAILY, daily) if keys_in(daily) else (INTRADAY, table_folder(settings, INTRADAY, day))
    return chosen


@dataclass
class GA4Records:
    """The records of some export files (every event name) and the lines set aside, each with
    its time where it could be read (`event_us`, else NA)."""

    records: pd.DataFrame
    rejects: pd.DataFrame
    objects_read: int = 0


def parse_ga4_objects(
    objects: Iterable[tuple[str, bytes]],
    max_object_bytes: int | None = None,
    max_engagement_seconds: float = DEFAULT_MAX_ENGAGEMENT_SECONDS,
) -> GA4Records:
    """Every line of the objects (newline-delimited JSON, gzip or not) read into a record, or
    quarantined with its reason. An engagement time above `max_engagement_seconds` on one event
    is not reading time (a stuck timer, a forged hit): the line is set aside."""
    return combine_records(
        [parse_ga4_object(key, data, max_object_bytes, max_engagement_seconds) for key, data in objects]
    )


def parse_ga4_object(
    key: str, data: bytes, max_object_bytes: int | None, max_engagement_seconds: float
) -> GA4Records:
    """One object's lines (`parse_ga4_objects`)."""
    rows: list[tuple] = []
    rejects: list[tuple] = []
    text, intact, too_large = decompress(data, max_object_bytes)
    lines = complete_lines(text, intact)
    del text
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        record, reason, event_us = _record(raw, max_engagement_seconds * 1000.0)
        if reason is not None:
            rejects.append((key, number, reason, _excerpt(raw), event_us))
        else:
            rows.append((*record, key, number))
    if too_large or not intact:
        reason = "object_too_large" if too_large else "truncated_gzip"
        rejects.append((key, len(lines) + 1, reason, "the rest of the object is not read", None))
    frame = pd.DataFrame(rows, columns=list(RECORD_DTYPES)).astype(RECORD_DTYPES)
    reject_frame = pd.DataFrame(rejects, columns=list(REJECT_FRAME_DTYPES)).astype(REJECT_FRAME_DTYPES)
    return GA4Records(frame, reject_frame, 1)


REJECT_FRAME_DTYPES = {**REJECT_DTYPES, "event_us": "Int64"}


def combine_records(parts: list[GA4Records]) -> GA4Records:
    """Several objects' records as one, in the order given."""
    if not parts:
        return GA4Records(
            pd.DataFrame(columns=list(RECORD_DTYPES)).astype(RECORD_DTYPES),
            pd.DataFrame(columns=list(REJECT_FRAME_DTYPES)).astype(REJECT_FRAME_DTYPES),
            0,
        )
    return GA4Records(
        pd.concat([part.records for part in parts], ignore_index=True),
        pd.concat([part.rejects for part in parts], ignore_index=True),
        sum(part.objects_read for part in parts),
    )


# Bump when what a line parses into changes: parses stored by older code are then not used.
PARSE_VERSION = 2


class ParsedFiles(Protocol):
    """Where the parse of each export file is kept between windows (the files of a day's table
    serve the day's twelve windows, and a daily table stays as it is for days)."""

    def get(self, day: date, digest: str) -> GA4Records | None: ...

    def put(self, day: date, digest: str, parsed: GA4Records) -> None: ...


def file_digest(key: str, data: bytes, max_object_bytes: int | None, max_engagement_seconds: float) -> str:
    """What a file's parse depends on: its name (the rejects name it), its bytes, the bounds and
    the parser's version. A file rewritten, renamed or read under other bounds gets another."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{PARSE_VERSION}|{key}|{max_object_bytes}|{max_engagement_seconds}|".encode())
    digest.update(data)
    return digest.hexdigest()


def _record(raw: bytes, max_engagement_msec: float) -> tuple[tuple | None, str | None, int | None]:
    """A line as the record's columns (RECORD_DTYPES, without source and line), or the reason it
    cannot be read; and its time where readable."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, _invalid_json_reason(raw), None
    if not isinstance(obj, dict):
        return None, "not_a_json_object", None
    event_us = _integer(obj.get("event_timestamp"))
    if event_us is None or not _EARLIEST_US <= event_us < _LATEST_US:
        return None, "bad_event_timestamp", None
    name = _clean(obj.get("event_name"))
    if not isinstance(obj.get("event_name"), str) or not name:
        return None, "missing_event_name", event_us
    params = _params(obj.get("event_params"))
    if params is None:
        return None, "bad_event_params", event_us
    msec = params.get("engagement_time_msec")
    engagement = 0.0 if msec is None else _number(msec)
    if engagement is None or engagement < 0:
        return None, "bad_engagement_time", event_us
    if engagement > max_engagement_msec:
        return None, "implausible_engagement_time", event_us
    location = _clean(params.get("page_location"))
    if name in GA4_EVENTS and not location:
        return None, "page_event_without_path", event_us
    session = params.get("ga_session_id")
    reader = _clean(obj.get("user_pseudo_id"))
    session_id = None if session is None else _clean(session)
    batch = tuple(_integer(obj.get(field)) for field in BATCH_FIELDS)
    record = (
        event_identity(reader, session_id, event_us, name, batch, location),
        name,
        event_us,
        reader,
        session_id,
        location,
        _clean(params.get("page_referrer")),
        engagement,
        _clean(_device(obj.get("device"))),
        _clean(obj.get("platform")),
        _clean(obj.get("stream_id")),
        *batch,
    )
    return record, None, event_us


BATCH_FIELDS = ("batch_page_id", "batch_ordering_id", "batch_event_index")


def event_identity(
    reader: str | None,
    session: str | None,
    event_us: int,
    name: str,
    batch: tuple[int | None, ...],
    location: str | None,
) -> str:
    """An event's id, as a UUID: a digest of what GA4 keeps stable across the copies of an event
    (GA4 has no event id). A copy re-serialized (its params in another order, a field added by a
    rewrite of the table) is the same event; two events differ in one of these."""
    key = orjson.dumps([reader, session, event_us, name, list(batch), location])
    return str(uuid.UUID(bytes=hashlib.blake2b(key, digest_size=16).digest()))


def _clean(value) -> str | None:
    """A JSON value as text (`formats._text`), with each NUL character replaced by U+FFFD, as the
    Snowplow parser does: pandas compares strings only up to a NUL, so `"R\\0x"` would be reader R."""
    text = _text(value)
    return text.replace("\x00", "\ufffd") if text is not None and "\x00" in text else text


def _params(value) -> dict | None:
    """`event_params` (repeated {key, value: {string_value | int_value | double_value | ...}}) as
    key -> value; None where it is not that shape."""
    if value is None:
        return {}
    if not isinstance(value, list):
        return None
    params = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            return None
        inner = item.get("value")
        if inner is None:
            continue
        if not isinstance(inner, dict):
            return None
        found = [v for v in inner.values() if v is not None]
        if found:
            params[item["key"]] = found[0]
    return params


def _integer(value) -> int | None:
    """An INT64 as BigQuery's JSON writes it (a string) or as a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if np.isfinite(number) else None
    return None


def _device(device) -> str | None:
    """What GA4 keeps of the device, as one user-agent-like text (None: nothing kept)."""
    if not isinstance(device, dict):
        return None
    web = device.get("web_info") if isinstance(device.get("web_info"), dict) else {}
    browser = "/".join(str(v) for v in (web.get("browser"), web.get("browser_version")) if v)
    system = "; ".join(str(v) for v in (device.get("operating_system"), device.get("category")) if v)
    text = f"{browser} ({system})" if system else browser
    return text.strip() or None


@dataclass
class GA4Window:
    """A window's GA4 events as raw events, its lines set aside, and what was dropped or not
    credited on the way. `lines_read`: the window's own records and rejects."""

    events: pd.DataFrame
    rejects: pd.DataFrame
    lines_read: int
    duplicates: dict[str, int]
    other_events: dict[str, int]
    unattributed_seconds: float = 0.0
    previous_page_credits: int = 0
    # Seconds reported on other events (clicks, downloads, ...), credited to their pages.
    other_events_seconds: float = 0.0
    tables: dict[str, str] = field(default_factory=dict)  # property date -> the table read
    objects_read: int = 0
    files_parsed: int = 0  # the tables' files parsed by this window ...
    files_reused: int = 0  # ... and those whose parse an earlier window kept

    @property
    def state(self) -> pd.DataFrame:
        """What the window hands on: its sessions' starts (GA4 has no heartbeats to remember)."""
        return reading_state(
            self.events["session_id"],
            self.events["session_start_tstamp"],
            np.zeros(0, dtype=np.int64),
            pd.Series(dtype="float64"),
        )


def ga4_window_events(
    parsed: GA4Records,
    start: datetime,
    end: datetime,
    hosts: Iterable[str] = (),
    carried: CarriedState | None = None,
) -> GA4Window:
    """The window's events (timed in [start, end)) as raw-event rows, with the earlier records
    read as context for sessions and the page a page view leaves. `hosts`: the site's own hosts,
    for crediting a page referrer (empty: the page view's own host); `carried`: the earlier
    windows' session starts. Rejected lines count where their time falls (`read_ga4_window`
    dates those without one)."""
    records = parsed.records
    start_us, end_us = _epoch_us(start), _epoch_us(end)
    in_window = ((records["event_us"] >= start_us) & (records["event_us"] < end_us)).to_numpy()
    copies = records["event_id"].duplicated().to_numpy()
    kept_kind = records["event_name"].isin(GA4_EVENTS).to_numpy()
    others = records.loc[in_window & ~copies & ~kept_kind, "event_name"].value_counts().sort_index()
    # Engaged time reported on another event (a click, a download, a form, a custom event) was
    # spent on that event's page: the event goes, its time stays, as a user_engagement row.
    timed_other = (
        ~kept_kind & (records["engagement_msec"] > 0).to_numpy() & records["page_location"].notna().to_numpy()
    )
    other_seconds = float(records.loc[in_window & ~copies & timed_other, "engagement_msec"].sum()) / 1000.0
    records = records.assign(event_name=records["event_name"].mask(timed_other, "user_engagement"))
    kept_kind |= timed_other
    duplicates = {"duplicate_in_window": int((copies & in_window).sum())}
    reject_time = parsed.rejects["event_us"]
    own_rejects = ((reject_time >= start_us) & (reject_time < end_us)).fillna(False).to_numpy(dtype=bool)
    rejects = parsed.rejects.loc[own_rejects, list(REJECT_COLUMNS)].reset_index(drop=True)
    lines_read = int(in_window.sum()) + len(rejects)

    day = records.loc[~copies & kept_kind & (records["event_us"] < end_us).to_numpy()]
    # Time order within each session. Events of one microsecond (a page view and the first
    # scroll of its page, often) are in the order the page sent them: the export's batch fields;
    # the id only breaks what they leave tied, the same way on every read.
    day = day.assign(_session=_session_ids(day))
    order = ["_session", "event_us", *BATCH_FIELDS, "event_id"]
    day = day.sort_values(order, kind="stable", ignore_index=True, na_position="last")
    timestamps = pd.Series(pd.to_datetime(day["event_us"].to_numpy(), unit="us", utc=True).as_unit("ns"))
    host, path = normalize_pages(*_host_and_path(day["page_location"]))
    frame = pd.DataFrame(
        {
            "event_id": day["event_id"],
            "event_name": day["event_name"],
            "app_id": day["stream_id"],
            "platform": day["platform"].str.lower(),
            "reader_id": day["user_pseudo_id"],
            "session_id": day["_session"],
            "page_view_id": pd.Series(pd.NA, index=day.index, dtype="string"),
            "page_host": host,
            "page_path": path,
            "useragent": day["device"],
            "iab_spider": pd.Series(False, index=day.index, dtype="boolean"),
            "collector_tstamp": timestamps,
            "dvce_created_tstamp": timestamps,
            "engaged_increment_seconds": day["engagement_msec"] / 1000.0,
        }
    )
    frame["session_start_tstamp"] = session_starts(frame, (carried or CarriedState.empty()).session_starts)
    is_own = (day["event_us"] >= start_us).to_numpy()
    is_view = (frame["event_name"] == PAGE_VIEW).to_numpy()

    # The page a page view leaves: its session's previous event's, else its referrer on the site.
    session = frame["session_id"]
    same_session = (session.notna() & session.eq(session.shift())).fillna(False).to_numpy(dtype=bool)
    ref_host, ref_path = normalize_pages(*_host_and_path(day["page_referrer"]))
    # On the site: one of its hosts, or (a site that lists none) the page view's own host.
    allowed = set(hosts)
    on_site = ref_host.isin(allowed) if allowed else ref_host.eq(frame["page_host"])
    ref_ok = on_site.fillna(False).to_numpy(dtype=bool)
    carries = is_view & (frame["engaged_increment_seconds"].to_numpy() > 0)
    # A GA4 session spans the reader's tabs: the previous event may be another tab's. A referrer
    # naming a page of the session seen before is the page left; else the previous event's page.
    ref_seen = _seen_earlier_in_session(
        session, frame["page_host"], frame["page_path"], ref_host, ref_path, carries
    )
    left_host = np.where(
        ref_seen | ~same_session,
        np.where(ref_ok | ref_seen, ref_host.to_numpy(dtype=object), None),
        frame["page_host"].shift().to_numpy(dtype=object),
    )
    left_path = np.where(
        ref_seen | ~same_session,
        np.where(ref_ok | ref_seen, ref_path.to_numpy(dtype=object), None),
        frame["page_path"].shift().to_numpy(dtype=object),
    )
    credited = carries & pd.notna(left_path)
    unattributed = float(frame.loc[carries & ~credited & is_own, "engaged_increment_seconds"].sum())
    credit_rows = credited & is_own
    credits = frame.loc[credit_rows].assign(
        event_id=frame.loc[credit_rows, "event_id"].map(credit_id),
        event_name="user_engagement",
        page_host=left_host[credit_rows],
        page_path=left_path[credit_rows],
    )
    frame.loc[is_view, "engaged_increment_seconds"] = 0.0  # its time is the page left's (above)
    events = frame.loc[is_own]
    if len(credits):
        events = pd.concat([events, credits], ignore_index=True)
    # By time, then id (a page view and its credit row share a time): the same order on every read.
    events = events.sort_values(["collector_tstamp", "event_id"], kind="stable", ignore_index=True)
    events = events[list(CLEAN_DTYPES)].astype(CLEAN_DTYPES)
    return GA4Window(
        events,
        rejects,
        lines_read,
        duplicates,
        {str(k): int(v) for k, v in others.items()},
        round(unattributed, 3),
        int(credit_rows.sum()),
        round(other_seconds, 3),
        objects_read=parsed.objects_read,
    )


def read_ga4_window(
    keys_in: Callable[[str], list[str]],
    objects_in: Callable[[list[str]], Iterable[tuple[str, bytes]]],
    settings: EventSettings,
    start: datetime,
    end: datetime,
    carried: CarriedState | None = None,
    parsed_files: ParsedFiles | None = None,
) -> GA4Window:
    """A window read from the bucket: each property date's table (daily, else intraday) parsed
    and the window's events taken out of it. `parsed_files`: the files' parses kept by earlier
    windows, used for the files unchanged since (and the new ones kept there)."""
    ga4 = settings.ga4
    if ga4 is None:
        raise ValueError("the site has no `events.ga4` settings")
    keys_in = functools.cache(keys_in)  # a daily table's listing serves the choice and the check
    tables = tables_to_read(keys_in, ga4, start, end)
    bound = settings.max_object_megabytes << 20
    parts = []
    files_parsed = files_reused = 0
    for day, (table, folder) in tables.items():
        listed = {_name(key) for key in keys_in(folder)}
        read_names: set[str] = set()
        files = []
        for key, data in _noting_names(objects_in([folder]), read_names):
            digest = file_digest(key, data, bound, ga4.max_engagement_seconds)
            stored = parsed_files.get(day, digest) if parsed_files is not None else None
            if stored is None:
                stored = parse_ga4_object(key, data, bound, ga4.max_engagement_seconds)
                if parsed_files is not None:
                    parsed_files.put(day, digest, stored)
                files_parsed += 1
            else:
                files_reused += 1
            files.append(stored)
        parsed = combine_records(files)
        gone = sorted(listed - read_names)
        if gone:
            # GA4 rewrites a day's table for days: files listed a moment ago and gone now mean
            # the table is being replaced. Read half of it, the window would look merely quiet.
            raise GA4TableChanged(
                f"{table}_{day:%Y%m%d} ({folder}) changed while window "
                f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) read it: {len(gone)} of its "
                f"{len(listed)} files listed were gone when read ({', '.join(gone[:3])}); "
                "nothing of the window is written: run it again once the table is settled"
            )
        # A line without a readable time belongs to the window holding its table's last moment
        # (the day's end in the property's zone), so that exactly one window counts it.
        day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo(ga4.timezone))
        undated = parsed.rejects["event_us"].isna()
        holds_end = start < day_end <= end
        parsed.rejects.loc[undated, "event_us"] = _epoch_us(start) if holds_end else -1
        parts.append(parsed)
    window = ga4_window_events(combine_records(parts), start, end, settings.allowed_hosts, carried)
    window.tables = {f"{day:%Y-%m-%d}": table for day, (table, _) in tables.items()}
    window.files_parsed, window.files_reused = files_parsed, files_reused
    return window


class GA4TableChanged(RuntimeError):
    """A day's table lost files between their listing and their reading."""


def _noting_names(objects: Iterable[tuple[str, bytes]], names: set[str]) -> Iterator[tuple[str, bytes]]:
    """The objects, each one's file name added to `names` as it is read."""
    for key, data in objects:
        names.add(_name(key))
        yield key, data


def _name(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def credit_id(event_id: str) -> str:
    """The id of the row that credits a page view's time to the page it left: derived from the
    page view's, so a re-read gives the same one."""
    digest = hashlib.blake2b(f"{event_id}{PREVIOUS_PAGE}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def _seen_earlier_in_session(
    session: pd.Series,
    host: pd.Series,
    path: pd.Series,
    ref_host: pd.Series,
    ref_path: pd.Series,
    rows: np.ndarray,
) -> np.ndarray:
    """Whether the referrer page (`ref_host`, `ref_path`) of each of `rows` (a mask) is the page
    of an earlier row of its session (rows in session and time order)."""
    first_seen: dict[tuple, int] = {}
    for position, key in enumerate(zip(session.tolist(), host.tolist(), path.tolist(), strict=True)):
        first_seen.setdefault(key, position)
    seen = np.zeros(len(session), dtype=bool)
    sessions, hosts, paths = (
        session.to_numpy(dtype=object),
        ref_host.to_numpy(dtype=object),
        ref_path.to_numpy(dtype=object),
    )
    for position in np.flatnonzero(rows).tolist():
        key = (sessions[position], hosts[position], paths[position])
        if not any(value is pd.NA for value in key):
            seen[position] = first_seen.get(key, position) < position
    return seen


def _epoch_us(when: datetime) -> int:
    return pd.Timestamp(when).value // 1000


def _session_ids(records: pd.DataFrame) -> pd.Series:
    """reader + ":" + ga_session_id (missing where either is)."""
    return (records["user_pseudo_id"] + ":" + records["ga_session_id"]).astype("string")


def _host_and_path(urls: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Host and path (with its query and fragment, which normalize_pages drops) of each URL."""
    split = {}
    # Distinct URLs by a dict (all their characters): pandas' unique stops comparing at a NUL.
    for url in dict.fromkeys(urls.dropna().tolist()):
        try:
            parts = urlsplit(url)
        except ValueError:
            split[url] = (None, None)
            continue
        rest = parts.path or "/"
        if parts.query:
            rest += "?" + parts.query
        split[url] = (parts.hostname, rest) if parts.hostname else (None, None)
    host = pd.Series(
        [split.get(u, (None, None))[0] if isinstance(u, str) else None for u in urls], dtype="string"
    )
    path = pd.Series(
        [split.get(u, (None, None))[1] if isinstance(u, str) else None for u in urls], dtype="string"
    )
    return host, path

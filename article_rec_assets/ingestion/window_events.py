"""A window's events as the bucket holds them: its own hour folders, and the hour folders before it
as context, each judged as the window that owned it judged it.

The context of a window that was ingested comes from its stored `delivered_events` (what that
window received, once each), so an object is read and parsed once; only the folders of windows
not yet ingested (or a lookback that cuts a window in two) are read from the bucket again. Both
give the same rows (`delivered_events` is the owner's parse of those folders), so a window's
result does not depend on which of its neighbours ran first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from article_rec_assets.ingestion.cleaning import CleanWindow, clean_window
from article_rec_assets.ingestion.parsing import ParsedEvents, combine, parse_objects
from article_rec_assets.ingestion.state import carried_state
from article_rec_assets.settings.sites import EventSettings
from article_rec_assets.settings.windows import WINDOW_HOURS

# (start, end) -> the (key, bytes) of every object in the hour folders of [start, end).
ObjectsIn = Callable[[datetime, datetime], Iterable[tuple[str, bytes]]]


def context_spans(start: datetime, lookback_hours: int) -> list[tuple[datetime, datetime, datetime]]:
    """The hour folders of the lookback before a window, grouped by the window that read them as
    its own: (first hour, end hour, that window's end), oldest first."""
    spans = []
    hour = start - timedelta(hours=lookback_hours)
    while hour < start:
        owner_start = hour.replace(
            hour=hour.hour - hour.hour % WINDOW_HOURS, minute=0, second=0, microsecond=0
        )
        owner_end = owner_start + timedelta(hours=WINDOW_HOURS)
        end = min(owner_end, start)
        spans.append((hour, end, owner_end))
        hour = end
    return spans


# The parsed columns the context is used for (cleaning.clean_window): duplicates, readers,
# sessions, pages and pings. A window stores these of its own events as `delivered_events`.
CONTEXT_COLUMNS = (
    "event_id",
    "event_name",
    "domain_userid",
    "domain_sessionid",
    "amp_client_id",
    "page_view_id",
    "page_urlhost",
    "page_urlpath",
    "amp_engaged_seconds",
    "collector_tstamp",
    "dvce_created_tstamp",
)


def delivered_events(window: ParsedEvents) -> pd.DataFrame:
    """The window's parsed events as later windows use them as context: the context columns, once
    per event id (the copy collected first, as `clean_window` keeps it), in arrival order."""
    events = window.events.loc[:, list(CONTEXT_COLUMNS)]
    events = events.sort_values("collector_tstamp", kind="stable").drop_duplicates("event_id")
    return events.reset_index(drop=True)


def _context_part(events: pd.DataFrame, like: pd.DataFrame) -> ParsedEvents:
    """Context rows in the context columns with the parsed events' types, from a parse or from
    stored `delivered_events`: only these are read by the cleaning, and columns made of nothing
    but missing values would cost more to build and join than all the rest."""
    columns = {name: events[name].astype(like[name].dtype, copy=False) for name in CONTEXT_COLUMNS}
    return ParsedEvents(pd.DataFrame(columns, index=events.index), parse_objects([]).rejects)


@dataclass
class WindowRead:
    window: ParsedEvents
    context: ParsedEvents
    context_windows_stored: int = 0  # earlier windows whose context came from storage
    context_windows_read: int = 0  # ... and those read from the bucket again


def read_window_events(
    objects_in: ObjectsIn,
    start: datetime,
    end: datetime,
    settings: EventSettings,
    stored: dict[datetime, pd.DataFrame] | None = None,
) -> WindowRead:
    """The window's own events and the context: the window accepts events collected from
    `max_lateness_hours` before its start up to `max_future_minutes` after its end, so an earlier
    window did too. Judging each context folder by its owner's bounds makes an event that owner
    counted a known delivery (it is not counted again when a copy lands in this window's
    folders), and one it quarantined not (a later copy counts); its objects are bounded together
    by `max_window_megabytes` (a lookback span that cuts its owner in two, by that span's own).
    `stored`: earlier windows' `delivered_events` by window start, used for whole windows in
    place of their folders (taken out of the dict as they are used: they are large)."""
    stored = stored if stored is not None else {}
    future = timedelta(minutes=settings.max_future_minutes)
    late = timedelta(hours=settings.max_lateness_hours)
    bound, window_bound = settings.max_object_megabytes << 20, settings.max_window_megabytes << 20
    window = parse_objects(
        objects_in(start, end), pd.Timestamp(end + future), bound, pd.Timestamp(start - late), window_bound
    )
    parts, from_storage, from_bucket = [], 0, 0
    for first, stop, owner_end in context_spans(start, settings.lookback_hours):
        owner_start = owner_end - timedelta(hours=WINDOW_HOURS)
        if first == owner_start and stop == owner_end and owner_start in stored:
            parts.append(_context_part(stored.pop(owner_start), window.events))
            from_storage += 1
        else:
            read = parse_objects(
                objects_in(first, stop),
                pd.Timestamp(owner_end + future),
                bound,
                pd.Timestamp(owner_start - late),
                window_bound,
            )
            part = _context_part(read.events, window.events)
            parts.append(ParsedEvents(part.events, read.rejects, read.lines_read, read.objects_read))
            from_bucket += 1
    return WindowRead(window, combine(parts), from_storage, from_bucket)


def context_windows(settings: EventSettings) -> int:
    """How many earlier windows' `delivered_events` a window's lookback reaches into."""
    return -(-settings.lookback_hours // WINDOW_HOURS)


def state_windows(settings: EventSettings) -> int:
    """How many earlier windows' `reading_state` a window reads: those of the last
    `max_session_days` (a page view's later pings are dropped with their session)."""
    return settings.max_session_days * 24 // WINDOW_HOURS


def ingest_events(
    objects_in: ObjectsIn,
    start: datetime,
    end: datetime,
    settings: EventSettings,
    stored: dict[datetime, pd.DataFrame] | None = None,
    earlier_states: Iterable[pd.DataFrame] = (),
) -> tuple[WindowRead, CleanWindow]:
    """A window ingested as the asset does it: its folders read, its context from `stored`
    `delivered_events` (or the bucket), and cleaned with what earlier windows handed on."""
    read = read_window_events(objects_in, start, end, settings, stored)
    return read, clean_window(read.window, read.context, settings, carried_state(earlier_states))

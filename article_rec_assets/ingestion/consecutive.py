"""A site's consecutive windows ingested oldest first, as one run does them (one window for the
schedule, a range of them for a backfill).

Each window's own objects are read once. What a window hands on to the next ones (its
`delivered_events`, the lookback's context; its `reading_state`, the sessions and pages already
credited) is carried in memory from one window to the next; only the windows before the first
come from storage. Each window is judged against the site's earlier windows: those of the run
from memory, the older ones from what their materializations recorded. A window's tables are the
same whichever way it is run: alone, or anywhere in a range.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.ga4 import ParsedFiles, read_ga4_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.quality_verdicts import (
    Verdict,
    freshness_verdict,
    latest_time,
    malformed_verdicts,
    volume_verdict,
)
from article_rec_assets.ingestion.state import carried_state
from article_rec_assets.ingestion.window_events import (
    ObjectsIn,
    context_windows,
    delivered_events,
    ingest_events,
    state_windows,
)
from article_rec_assets.settings.sites import EventSettings
from article_rec_assets.settings.windows import WINDOW_HOURS

STEP = timedelta(hours=WINDOW_HOURS)
SNOWPLOW, GA4 = "snowplow", "ga4"


@dataclass(frozen=True)
class WindowFigures:
    """What later windows' checks read of a window: its event count, its source and its newest
    event (None: no events)."""

    events: int
    source: str
    newest_event_at: pd.Timestamp | None


@dataclass
class EventReaders:
    """The site's bucket, as the two sources read it."""

    window_objects: ObjectsIn  # Snowplow: (start, end) -> the hour folders' objects
    folder_keys: Callable[[str], list[str]]  # GA4: a table folder's object keys
    folder_objects: Callable[[list[str]], Iterable[tuple[str, bytes]]]  # GA4: those objects
    ga4_parses: ParsedFiles | None = None  # GA4: the files' parses kept between windows


@dataclass
class Stored:
    """What earlier windows left in storage, by window start (None: not stored); read only for
    the windows before the run's first."""

    deliveries: Callable[[datetime], pd.DataFrame | None]
    state: Callable[[datetime], pd.DataFrame | None]
    figures: Callable[[datetime], WindowFigures | None]


@dataclass
class SourceRead:
    """A window as its source gave it: the tables and the figures of the read."""

    source: str
    events: pd.DataFrame
    rejects: pd.DataFrame
    deliveries: pd.DataFrame
    state: pd.DataFrame
    lines_read: int
    objects_read: int
    duplicates: dict[str, int]
    # Source-specific figures for the raw_events metadata (plain values, JSON where nested).
    source_figures: dict[str, object]


@dataclass
class IngestedWindow(SourceRead):
    """One window's tables, figures and check verdicts."""

    start: datetime = field(kw_only=True)
    end: datetime = field(kw_only=True)
    state_windows_read: int = field(kw_only=True)
    same_window_earlier_days: list[int] = field(kw_only=True)
    malformed_warn: Verdict = field(kw_only=True)
    malformed_block: Verdict = field(kw_only=True)
    volume: Verdict = field(kw_only=True)
    freshness: Verdict = field(kw_only=True)
    seconds: float = field(kw_only=True)
    reasons: dict[str, int] = field(kw_only=True, default_factory=dict)

    @property
    def figures(self) -> WindowFigures:
        newest = self.events["collector_tstamp"].max() if len(self.events) else None
        return WindowFigures(len(self.events), self.source, newest)

    @property
    def malformed_share(self) -> float:
        return len(self.rejects) / self.lines_read if self.lines_read else 0.0


def earlier_figure_starts(start: datetime, settings: EventSettings) -> list[datetime]:
    """The earlier windows a window's checks compare it with: the same window on each of the last
    `volume_history_days`, and every window within `freshness_hours`; oldest first."""
    starts = {start - timedelta(days=d) for d in range(1, settings.volume_history_days + 1)}
    recent = int(np.ceil(settings.freshness_hours / WINDOW_HOURS))
    starts |= {start - STEP * i for i in range(1, recent + 1)}
    return sorted(starts)


def ingest_consecutive_windows(
    starts: list[datetime], settings: EventSettings, readers: EventReaders, stored: Stored
) -> Iterator[IngestedWindow]:
    """The windows starting at `starts` (consecutive, oldest first), one at a time: a window is
    yielded before the next is read, so a range holds one window's tables (and what it hands on)."""
    if any(b - a != STEP for a, b in pairwise(starts)):
        raise ValueError("the windows of a run must be consecutive, oldest first")
    first = starts[0] if starts else None
    deliveries: dict[datetime, pd.DataFrame] = {}
    states: dict[datetime, pd.DataFrame] = {}
    figures: dict[datetime, WindowFigures] = {}

    def earlier(memory: dict, from_storage: Callable, when: datetime):
        # A window before the run's first is read from storage once, then kept like the run's
        # own (the first windows of a range share most of their earlier windows).
        if when not in memory and (first is None or when < first):
            memory[when] = from_storage(when)
        return memory.get(when)

    for start in starts:
        started = time.perf_counter()
        end = start + STEP
        state_starts = [start - STEP * i for i in range(state_windows(settings), 0, -1)]
        earlier_states = [
            s for s in (earlier(states, stored.state, w) for w in state_starts) if s is not None
        ]
        if settings.reads_ga4(start):
            read = _read_ga4(readers, settings, start, end, earlier_states)
        else:
            context_starts = [start - STEP * i for i in range(context_windows(settings), 0, -1)]
            context = {w: earlier(deliveries, stored.deliveries, w) for w in context_starts}
            read = _read_snowplow(
                readers,
                settings,
                start,
                end,
                {w: frame for w, frame in context.items() if frame is not None},
                earlier_states,
            )
        history = {w: earlier(figures, stored.figures, w) for w in earlier_figure_starts(start, settings)}
        window = _judged(read, start, end, settings, history, len(earlier_states), started)
        deliveries[start], states[start], figures[start] = window.deliveries, window.state, window.figures
        # Only what the next windows can still reach is kept.
        for memory, count in ((deliveries, context_windows(settings)), (states, state_windows(settings))):
            for old in [w for w in memory if w <= start - STEP * count]:
                del memory[old]
        yield window


def _read_snowplow(
    readers: EventReaders,
    settings: EventSettings,
    start: datetime,
    end: datetime,
    context: dict[datetime, pd.DataFrame],
    earlier_states: list[pd.DataFrame],
) -> SourceRead:
    read, cleaned = ingest_events(
        readers.window_objects, start, end, settings, stored=dict(context), earlier_states=earlier_states
    )
    return SourceRead(
        source=SNOWPLOW,
        events=cleaned.events,
        rejects=read.window.rejects,
        deliveries=delivered_events(read.window),
        state=cleaned.state,
        lines_read=read.window.lines_read,
        objects_read=read.window.objects_read,
        duplicates=cleaned.duplicates,
        source_figures={
            "context_objects_read": read.context.objects_read,
            "context_windows_from_storage": read.context_windows_stored,
            "context_windows_from_bucket": read.context_windows_read,
        },
    )


def _read_ga4(
    readers: EventReaders,
    settings: EventSettings,
    start: datetime,
    end: datetime,
    earlier_states: list[pd.DataFrame],
) -> SourceRead:
    window = read_ga4_window(
        readers.folder_keys,
        readers.folder_objects,
        settings,
        start,
        end,
        carried_state(earlier_states),
        readers.ga4_parses,
    )
    return SourceRead(
        source=GA4,
        events=window.events,
        rejects=window.rejects,
        deliveries=delivered_events(parse_objects([])),  # no hour folders for later windows
        state=window.state,
        lines_read=window.lines_read,
        objects_read=window.objects_read,
        duplicates=window.duplicates,
        source_figures={
            "ga4_tables": window.tables,
            "other_events_dropped": window.other_events,
            "other_events_engaged_seconds": window.other_events_seconds,
            "ga4_files_parsed": window.files_parsed,
            "ga4_files_whose_parse_was_kept": window.files_reused,
            "engagement_unattributed_seconds": window.unattributed_seconds,
            "previous_page_credits": window.previous_page_credits,
        },
    )


def _judged(
    read: SourceRead,
    start: datetime,
    end: datetime,
    settings: EventSettings,
    history: dict[datetime, WindowFigures | None],
    state_windows_read: int,
    started: float,
) -> IngestedWindow:
    # Like with like: a GA4 window has no pings, so it is not judged by a Snowplow day's count.
    same_window = [
        figures.events
        for when, figures in sorted(history.items())
        if figures is not None and when.time() == start.time() and figures.source == read.source
    ]
    newest = read.events["collector_tstamp"].max() if len(read.events) else None
    if newest is None:  # the newest event any earlier window within the limit saw
        newest = latest_time(
            str(f.newest_event_at)
            for f in history.values()
            if f is not None and f.newest_event_at is not None
        )
    warn, block = malformed_verdicts(read.lines_read, len(read.rejects), settings)
    return IngestedWindow(
        **vars(read),
        start=start,
        end=end,
        state_windows_read=state_windows_read,
        same_window_earlier_days=same_window,
        malformed_warn=warn,
        malformed_block=block,
        volume=volume_verdict(len(read.events), same_window, settings.volume_warn_share),
        freshness=freshness_verdict(
            None if newest is None else newest.to_pydatetime(), end, timedelta(hours=settings.freshness_hours)
        ),
        seconds=time.perf_counter() - started,
        reasons={str(k): int(v) for k, v in read.rejects["reason"].value_counts().sort_index().items()},
    )

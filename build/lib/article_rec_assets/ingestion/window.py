"""A window's events as the bucket holds them: its own hour folders, and the hour folders before it
as context, each judged as the window that owned it judged it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import pandas as pd

from article_rec_assets.ingestion.parsing import ParsedEvents, combine, parse_objects
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


def read_window_events(
    objects_in: ObjectsIn, start: datetime, end: datetime, settings: EventSettings
) -> tuple[ParsedEvents, ParsedEvents]:
    """(the window's own events, the context): the window accepts events collected up to
    `max_future_minutes` after its end, so an earlier window did too. Judging each context folder
    by its owner's bound makes an event that owner counted a known delivery (it is not counted
    again when a copy lands in this window's folders), and one it quarantined not (a later copy
    counts)."""
    future = timedelta(minutes=settings.max_future_minutes)
    bound = settings.max_object_megabytes << 20
    window = parse_objects(objects_in(start, end), pd.Timestamp(end + future), bound)
    context = combine(
        [
            parse_objects(objects_in(first, stop), pd.Timestamp(owner_end + future), bound)
            for first, stop, owner_end in context_spans(start, settings.lookback_hours)
        ]
    )
    return window, context

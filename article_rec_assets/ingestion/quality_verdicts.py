"""Data-quality verdicts on one window's events, judged against the site's earlier windows.

Plain functions: the assets give them the window's figures and those of earlier windows (read
from the materialization metadata Dagster keeps), and turn the verdict into a check result.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from article_rec_assets.settings.sites import EventSettings


@dataclass(frozen=True)
class Verdict:
    passed: bool
    blocking: bool  # a failure that must stop publishing (else: a warning)
    description: str


def malformed_verdicts(lines_read: int, unusable: int, settings: EventSettings) -> tuple[Verdict, Verdict]:
    """(warning, blocking) verdicts on the share of a window's lines that are unusable. Below
    `malformed_min_lines` lines a share says little (one bad line among nine is 11 %): both pass
    and say so."""
    share = unusable / lines_read if lines_read else 0.0
    if lines_read < settings.malformed_min_lines:
        note = (
            f"{unusable:,} of only {lines_read:,} lines unusable: the share is judged from "
            f"{settings.malformed_min_lines:,} lines (`malformed_min_lines`)"
        )
        return Verdict(True, False, note), Verdict(True, True, note)
    summary = f"{share:.2%} of the window's lines are unusable ({unusable:,} of {lines_read:,})"
    warn, block = settings.malformed_warn_share, settings.malformed_block_share
    return (
        Verdict(share <= warn, False, f"{summary} (warning above {warn:.0%})"),
        Verdict(share <= block, True, f"{summary} (blocking above {block:.0%})"),
    )


def volume_verdict(events: int, same_window_history: list[int], warn_fraction: float) -> Verdict:
    """The window's event count against the median of the same window (time of day) on earlier
    days. Below `warn_fraction` of it: a warning; empty where traffic was expected: blocking."""
    if not same_window_history:
        return Verdict(True, False, f"{events:,} events; no earlier days to compare with yet")
    median = statistics.median(same_window_history)
    days = len(same_window_history)
    if median <= 0:
        return Verdict(True, False, f"{events:,} events; the same window was empty on the last {days} days")
    share = events / median
    summary = (
        f"{events:,} events, {share:.0%} of the median {median:,.0f} of the same window "
        f"on {days} earlier days"
    )
    if events == 0:
        return Verdict(
            False, True, f"no events where {median:,.0f} were expected ({summary}): nothing is published"
        )
    if share < warn_fraction:
        return Verdict(False, False, f"{summary}, below {warn_fraction:.0%}")
    return Verdict(True, False, summary)


def freshness_verdict(newest_event_at: datetime | None, window_end: datetime, limit: timedelta) -> Verdict:
    """Fails when the site's newest event (this window or an earlier one) is older than `limit`
    at the window's end: the tracker or the loader has stopped sending."""
    if newest_event_at is None:
        return Verdict(
            False, False, f"no events at all in the last {_hours(limit)} before {window_end:%Y-%m-%d %H:%M}"
        )
    age = window_end - newest_event_at
    if age > limit:
        return Verdict(
            False,
            False,
            f"newest event {newest_event_at:%Y-%m-%d %H:%M}, {_hours(age)} before the window's end "
            f"(limit {_hours(limit)})",
        )
    return Verdict(True, False, f"newest event {newest_event_at:%Y-%m-%d %H:%M} UTC")


def latest_time(stamps: Iterable[str]) -> pd.Timestamp | None:
    """The newest of some UTC times written as text (as materialization metadata keeps them)."""
    parsed = [pd.Timestamp(s) for s in stamps if s]
    valid = [t if t.tzinfo else t.tz_localize("UTC") for t in parsed if not pd.isna(t)]
    return max(valid) if valid else None


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"

"""The 2-hour UTC windows everything is cut into: plain arithmetic, no Dagster and no environment
(so the demo can use it before it sets the partitions' start)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

WINDOW_HOURS = 2
WINDOWS_PER_DAY = 24 // WINDOW_HOURS
WINDOW_KEY_FORMAT = "%Y-%m-%d-%H:%M"


def parse_window(window_key: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(window_key, WINDOW_KEY_FORMAT).replace(tzinfo=UTC)
    return start, start + timedelta(hours=WINDOW_HOURS)


def window_key_before(window_key: str) -> str:
    """The key of the window just before `window_key`'s."""
    start, _ = parse_window(window_key)
    return (start - timedelta(hours=WINDOW_HOURS)).strftime(WINDOW_KEY_FORMAT)


def newest_complete_window(at: datetime) -> datetime:
    """Start of the newest 2-hour window that has fully ended at `at` (the filling one is skipped)."""
    at = at.astimezone(UTC)
    current_start = at.replace(hour=at.hour - at.hour % WINDOW_HOURS, minute=0, second=0, microsecond=0)
    return current_start - timedelta(hours=WINDOW_HOURS)

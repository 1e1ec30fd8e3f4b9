"""The live demo's one variable: the span of clickstream `make demo` generated. The demo writes it
into its Dagster home's `.env`; where it is set (and events are read from the local folder), the
demo's sensor (sensor.py) writes each hour after its end into the demo's bucket as the hour ends.
A deployment never sets it: nothing else writes synthetic events."""

from __future__ import annotations

import os
from datetime import UTC, datetime

# `<start>/<end>`, UTC, ISO 8601.
DEMO_HISTORY_VAR = "ARTICLE_REC_DEMO_HISTORY"


def demo_history() -> tuple[datetime, datetime] | None:
    """(start, end) of the demo's generated clickstream, when the live demo is on."""
    value = os.environ.get(DEMO_HISTORY_VAR, "").strip()
    if not value:
        return None
    try:
        start, end = (_utc(datetime.fromisoformat(part)) for part in value.split("/"))
    except ValueError as exc:
        raise ValueError(f"{DEMO_HISTORY_VAR} must be <start>/<end> in ISO 8601, not {value!r}") from exc
    if not start < end:
        raise ValueError(f"{DEMO_HISTORY_VAR}={value!r}: the start must come before the end")
    return start, end


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def demo_history_value(start: datetime, end: datetime) -> str:
    """`DEMO_HISTORY_VAR`'s value for the span [start, end)."""
    return f"{start.astimezone(UTC):%Y-%m-%dT%H:%MZ}/{end.astimezone(UTC):%Y-%m-%dT%H:%MZ}"

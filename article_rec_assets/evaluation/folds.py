"""Folds of the replay: a fold starts at every `step_hours` UTC boundary t0; its test pairs are the
consecutive clicks (a -> b) of a session whose click b falls in [t0, t0 + step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from article_rec_assets.recommenders.click_log import MS_PER_HOUR, ClickLog, as_utc, epoch_ms_of


@dataclass(frozen=True)
class Pairs:
    """Consecutive clicks (source -> target) of one session; `timestamp` is the target's."""

    source: np.ndarray
    target: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def session_pairs(log: ClickLog) -> Pairs:
    """Every consecutive pair (a -> b) within a session, a != b, stamped with b's time."""
    source, target, stamp = log.next_clicks
    return Pairs(source=source, target=target, timestamp=stamp)


def fold_starts(days: Iterable[str | pd.Timestamp], step_hours: int = 2) -> list[pd.Timestamp]:
    """t0 of every fold: each `step_hours` boundary of each UTC day, from 00:00."""
    if 24 % step_hours:
        raise ValueError("step_hours must divide 24")
    starts = []
    for day in days:
        midnight = as_utc(day).floor("D")
        starts.extend(midnight + pd.Timedelta(hours=h) for h in range(0, 24, step_hours))
    return starts


def fold_pairs(pairs: Pairs, t0: pd.Timestamp, step_hours: float = 2) -> Pairs:
    """The pairs whose target click falls in [t0, t0 + step)."""
    start = epoch_ms_of(t0)
    inside = (pairs.timestamp >= start) & (pairs.timestamp < start + int(step_hours * MS_PER_HOUR))
    return Pairs(source=pairs.source[inside], target=pairs.target[inside], timestamp=pairs.timestamp[inside])

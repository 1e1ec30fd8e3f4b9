"""What earlier windows left in storage, checked before a window trusts it.

A window reads the `delivered_events` of the windows its lookback reaches (to drop events
delivered again) and the `reading_state` of the last `max_session_days` (to credit late pings
exactly). Trusted blindly, a table emptied, cut short, stripped of a column or edited on disk (or
in S3) counts an event twice or credits a ping wrongly without a word. So each stored window is
compared with what its materialization recorded: its columns, its rows and, for the small
`reading_state`, a digest of its content. The caller decides what a failed check costs: the
deliveries are read again from the window's hour folders; a reading state cannot be, so the run
fails naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Recorded:
    """What a window's materialization recorded of a stored table (None: not recorded)."""

    rows: int | None
    digest: str | None = None


def content_digest(frame: pd.DataFrame) -> str:
    """A digest of a table's columns, types and values (row order included)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}:{dtype};".encode())
    if len(frame):
        digest.update(
            np.ascontiguousarray(pd.util.hash_pandas_object(frame, index=False).to_numpy()).tobytes()
        )
    return digest.hexdigest()[:32]


def stored_problem(
    frame: pd.DataFrame | None, recorded: Recorded | None, columns: Iterable[str]
) -> str | None:
    """Why a stored window's table cannot stand for what its window wrote (None: it can).

    `frame` is the table as read (None: no file), `recorded` what the window's newest
    materialization recorded (None: the instance has none, as for windows before the site's
    first), `columns` those the reader needs."""
    if frame is None:
        if recorded is not None and recorded.rows:
            return f"missing, where its materialization recorded {recorded.rows:,} rows"
        return None
    absent = [name for name in columns if name not in frame.columns]
    if absent:
        return f"lacks the columns {absent}"
    if recorded is None:
        return None
    if recorded.rows is not None and len(frame) != recorded.rows:
        return f"holds {len(frame):,} rows, where its materialization recorded {recorded.rows:,}"
    if recorded.digest is not None and content_digest(frame) != recorded.digest:
        return "was changed after its materialization (its content digest differs)"
    return None

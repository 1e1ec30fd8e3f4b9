"""What a window hands on to later windows beyond the hours of its lookback: the start of each
session it saw, and each page view it credited with reading time (with the highest cumulative
engaged time AMP reported for it).

The lookback's own events (re-read, or loaded from the earlier windows' `delivered_events`) tell
which events and heartbeats were already counted in the last hours. These few rows per session and
page view make the rest exact without an unbounded lookback: a ping arriving a day after its page
view's earlier pings adds a heartbeat, not the first-heartbeat minimum again; an AMP ping adds only
the rise of its page view's total; and an event more than `max_session_days` after its session
started is known as such. A window writes a row for every session and page view among its own
events, with what it knew of them (its own events, its lookback and the earlier windows' rows), so
the knowledge travels on as long as a session is active at least once every `max_session_days`;
a page view's pings later than that are dropped with their session anyway.

Sessions and page views are keyed by a 64-bit hash of their identifiers (pandas' SipHash of all
their bytes, NUL included): two different page views share a key with a probability of about
1e-19 per pair, against the megabytes that 28 days of identifier strings would cost per window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.codes import string_codes

STATE_DTYPES = {
    "kind": "string",  # "session" or "page_view"
    "key": "int64",
    "session_start_tstamp": "datetime64[ns, UTC]",  # sessions: the earliest collector time known
    "amp_engaged_seconds": "float64",  # AMP page views: the highest cumulative total known
}
SESSION, PAGE_VIEW = "session", "page_view"

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _text_hash(values: pd.Series) -> np.ndarray:
    """SipHash of each value's bytes, computed once per distinct value (a window has a million
    rows but far fewer page views); 0 where missing."""
    codes, distinct = string_codes(values)
    if not len(distinct):
        return np.zeros(len(codes), dtype=np.uint64)
    hashes = pd.util.hash_array(distinct.to_numpy(zero_copy_only=False).astype(object), categorize=False)
    return np.where(codes >= 0, hashes[np.maximum(codes, 0)], np.uint64(0))


def _combined(tag: str, hashes: list[np.ndarray]) -> np.ndarray:
    key = np.full(len(hashes[0]), pd.util.hash_array(np.array([tag], dtype=object))[0], dtype=np.uint64)
    for column in hashes:
        key = (key ^ column) * _MIX  # uint64 arithmetic wraps: a multiplicative mix
        key ^= key >> np.uint64(29)
    return key.view(np.int64)


def text_keys(tag: str, *columns: pd.Series) -> np.ndarray:
    """A 64-bit key per row for the tuple (tag, column values...); the tag keeps kinds apart."""
    return _combined(tag, [_text_hash(column) for column in columns])


def page_view_keys(frame: pd.DataFrame) -> np.ndarray:
    """Each row's page view as engaged time groups pings: a web ping by page view id and session,
    an AMP ping by page view id alone (AMP sends no session id), without a page view id by reader,
    session and page."""
    amp = (frame["event_name"] == "amp_page_ping").to_numpy(dtype=bool, na_value=False)
    has_id = frame["page_view_id"].notna().to_numpy()
    page_view, session = _text_hash(frame["page_view_id"]), _text_hash(frame["session_id"])
    no_id = _combined("path", [_text_hash(frame["reader_id"]), session, _text_hash(frame["page_path"])])
    web_key = _combined("web", [page_view, session])
    amp_key = _combined("amp", [page_view])
    return np.where(has_id, np.where(amp, amp_key, web_key), no_id)


def session_keys(sessions: pd.Series) -> np.ndarray:
    return text_keys(SESSION, sessions)


@dataclass(frozen=True)
class CarriedState:
    """The earlier windows' rows, one per key: session key -> start (ns since the epoch), and
    page view key -> highest AMP total (0 for web page views)."""

    session_starts: pd.Series
    page_views: pd.Series

    @classmethod
    def empty(cls) -> CarriedState:
        return cls(pd.Series(dtype="int64"), pd.Series(dtype="float64"))


def carried_state(tables: Iterable[pd.DataFrame]) -> CarriedState:
    """The state the earlier windows' `reading_state` tables hand on, merged: the earliest start of
    each session, the highest AMP total of each page view."""
    frames = [t for t in tables if len(t)]
    if not frames:
        return CarriedState.empty()
    rows = pd.concat(frames, ignore_index=True)
    sessions = rows[rows["kind"] == SESSION]
    starts = (
        sessions["session_start_tstamp"]
        .dt.as_unit("ns")
        .astype("int64")
        .groupby(sessions["key"].to_numpy())
        .min()
    )
    views = rows[rows["kind"] == PAGE_VIEW]
    totals = views["amp_engaged_seconds"].fillna(0.0).groupby(views["key"].to_numpy()).max()
    return CarriedState(starts, totals)


def reading_state(
    sessions: pd.Series, starts: pd.Series, ping_keys: np.ndarray, amp_totals: pd.Series
) -> pd.DataFrame:
    """The rows a window hands on: each session of its events with its start, each page view it
    pinged (`ping_keys` of its ping rows) with the highest AMP total known (`amp_totals`, by key;
    NaN or 0 for web page views, whose presence is what counts). Sorted by kind and key, so a
    rerun writes identical rows."""
    # One row per session.
    codes, distinct = string_codes(sessions)
    first_rows = np.zeros(len(distinct), dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    first_rows[codes[rows]] = rows  # any row of a session will do: all carry its start
    session_rows = pd.DataFrame(
        {
            "key": session_keys(pd.Series(distinct.to_pandas(), dtype=object)),
            "session_start_tstamp": starts.iloc[first_rows].to_numpy(),
        }
    )
    view_keys = np.unique(ping_keys)
    view_rows = pd.DataFrame(
        {"key": view_keys, "amp_engaged_seconds": amp_totals.reindex(view_keys).to_numpy(dtype="float64")}
    )
    state = pd.concat(
        [session_rows.assign(kind=SESSION), view_rows.assign(kind=PAGE_VIEW)], ignore_index=True
    )
    state = state.reindex(columns=list(STATE_DTYPES)).astype(STATE_DTYPES)
    return state.sort_values(["kind", "key"], ignore_index=True)

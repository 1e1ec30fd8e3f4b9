"""A window's parsed rows made into events the rest of the platform can use, with the hour folders
before the window as context only: duplicates already delivered are dropped, readers and sessions
are named, pages normalized, and each ping gets the reading time it adds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.codes import string_codes
from article_rec_assets.ingestion.engaged_time import MIN_VISIT_SECONDS, engaged_increments
from article_rec_assets.ingestion.parsing import ParsedEvents
from article_rec_assets.ingestion.state import CarriedState, page_view_keys, reading_state, session_keys
from article_rec_assets.settings.sites import EventSettings

# AMP cache URLs: /c/s/<publisher host>/<path> (or /v/s/ for the viewer), and a trailing /amp.
AMP_CACHE_PREFIX = re.compile(r"^/[cv]/s/([^/]+)(/.*)?$")
AMP_SUFFIX = re.compile(r"/amp/?$")


CLEAN_DTYPES = {
    "event_id": "string",
    "event_name": "string",
    "app_id": "string",
    "platform": "string",
    "reader_id": "string",
    "session_id": "string",
    "page_view_id": "string",
    "page_host": "string",
    "page_path": "string",
    "useragent": "string",
    "iab_spider": "boolean",
    "collector_tstamp": "datetime64[ns, UTC]",
    "dvce_created_tstamp": "datetime64[ns, UTC]",
    # The first collector time of the event's session among the events known to the window.
    "session_start_tstamp": "datetime64[ns, UTC]",
    "engaged_increment_seconds": "float64",
}


@dataclass
class CleanWindow:
    events: pd.DataFrame
    duplicates: dict[str, int] = field(default_factory=dict)
    # What the window hands on to later windows (ingestion/state.py).
    state: pd.DataFrame | None = None


def map_unique(values: pd.Series, transform) -> pd.Series | pd.DataFrame:
    """`transform` applied to each distinct value once, spread back over the rows.

    A window has a million events but only thousands of distinct paths and user agents, so string
    work (regular expressions above all) is done per distinct value. Arrow finds the distinct
    values: it compares strings by all their bytes, where pandas' factorize stops at a NUL
    character (`"a\\0x"` and `"a"` would be one value, and one reader's text would stand for others').
    """
    codes, dictionary = string_codes(values)
    uniques = dictionary.to_pandas()
    result = transform(pd.Series(uniques, dtype=values.dtype if len(uniques) else "string"))
    taken = result.take(np.where(codes < 0, 0, codes)) if len(uniques) else result.reindex(range(len(codes)))
    taken.index = values.index
    missing = codes < 0
    if missing.any():
        taken = taken.mask(pd.Series(missing, index=values.index), other=pd.NA)
    return taken


def _normalize_unique_paths(paths: pd.Series) -> pd.DataFrame:
    clean = paths.str.split("?", n=1).str[0].str.split("#", n=1).str[0]
    cache = clean.str.extract(AMP_CACHE_PREFIX)
    clean = clean.where(cache[0].isna(), cache[1].fillna("/"))
    return pd.DataFrame({"cache_host": cache[0], "path": clean.str.replace(AMP_SUFFIX, "/", regex=True)})


def normalize_pages(hosts: pd.Series, paths: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The publisher's host and article path behind a page URL.

    Drops query and fragment, unwraps AMP-cache paths (`/c/s/<host>/...`, `/v/s/<host>/...`, whose
    inner host is the publisher's), and strips a trailing `/amp`.
    """
    pages = map_unique(paths.fillna("").astype(object), _normalize_unique_paths)
    host = hosts.where(pages["cache_host"].isna(), pages["cache_host"])
    return host.str.lower().astype("string"), pages["path"].astype("string")


def _infer_sessions(frame: pd.DataFrame, timeout: pd.Timedelta) -> pd.Series:
    """`domain_sessionid`, or where the tracker sent none (AMP), a new session per reader after
    `timeout` of inactivity, named after the reader and the session's first event time."""
    session = frame["domain_sessionid"].astype("string")
    missing = session.isna() & frame["reader_id"].notna()
    if not missing.any():
        return session
    part = frame.loc[missing, ["reader_id", "dvce_created_tstamp"]]
    # Readers grouped by their Arrow codes: pandas' groupby stops comparing strings at a NUL.
    part = part.assign(_reader=string_codes(part["reader_id"])[0])
    part = part.sort_values(["_reader", "dvce_created_tstamp"], kind="stable")
    gap = part.groupby("_reader", sort=False)["dvce_created_tstamp"].diff()
    starts = gap.isna() | (gap > timeout)
    start_time = part["dvce_created_tstamp"].where(starts).ffill()
    names = part["reader_id"] + ":" + (start_time.astype("int64") // 1_000_000_000).astype(str)
    session.loc[names.index] = names.astype("string")
    return session


def session_starts(frame: pd.DataFrame, carried: pd.Series | None = None) -> pd.Series:
    """Each event's session start: the earliest collector time of its session (NaT without one)
    in `frame` or, where earlier windows knew an earlier one, `carried` (session key -> ns), which
    Snowplow's model measures `max_session_days` from."""
    codes, sessions = string_codes(frame["session_id"])
    collected = frame["collector_tstamp"].astype("int64").to_numpy()
    first = np.full(len(sessions) or 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes[codes >= 0], collected[codes >= 0])
    if carried is not None and len(carried) and len(sessions):
        # Positions, not reindex: nanosecond times do not survive a float64 NaN-filled column.
        at = carried.index.get_indexer(session_keys(pd.Series(sessions.to_pandas())))
        found = at >= 0
        first[found] = np.minimum(first[found], carried.to_numpy()[at[found]])
    starts = np.where(codes >= 0, first[np.maximum(codes, 0)], np.iinfo(np.int64).min)
    return pd.Series(pd.to_datetime(starts, utc=True).where(codes >= 0), index=frame.index)


def _shares_someone(context: pd.DataFrame, own: pd.DataFrame) -> np.ndarray:
    """Context rows with the reader, session id or page view id of one of `own`'s rows."""

    def reader(frame: pd.DataFrame) -> pd.Series:
        return frame["domain_userid"].fillna(frame["amp_client_id"])

    keep = np.zeros(len(context), dtype=bool)
    for ours, theirs in (
        (reader(context), reader(own)),
        (context["domain_sessionid"], own["domain_sessionid"]),
        (context["page_view_id"], own["page_view_id"]),
    ):
        # isin compares whole Python strings (NUL bytes included; unique() would not, so the
        # values are passed as they are); missing matches nothing.
        keep |= (ours.notna() & ours.isin(theirs.dropna())).to_numpy()
    return keep


def clean_window(
    window: ParsedEvents,
    context: ParsedEvents,
    settings: EventSettings,
    carried: CarriedState | None = None,
) -> CleanWindow:
    """The window's own events, once each, with reader, session, page and added reading time.

    `context` holds the events of the hour folders before the window. They are never emitted;
    they tell which events were delivered before (duplicates) and which heartbeats were counted.
    `carried`: what earlier windows handed on beyond the context (session starts, page views
    credited); the result's `state` is what this window hands on.
    """
    carried = carried or CarriedState.empty()
    # Arrival order: collector time, then object and line (objects come sorted by key). Copies of
    # one event are identical, so which copy is kept does not change the result.
    # The order and the duplicates are found on two columns, so that the window's rows are copied
    # once (the kept ones, in order) rather than once per step.
    seen_before = context.events.sort_values("collector_tstamp", kind="stable").drop_duplicates("event_id")
    order = window.events["collector_tstamp"].reset_index(drop=True).sort_values(kind="stable").index
    event_ids = window.events["event_id"].take(order)
    in_window_dups = event_ids.duplicated().to_numpy()
    earlier = event_ids.isin(seen_before["event_id"]).to_numpy() & ~in_window_dups
    own = window.events.take(order[~(in_window_dups | earlier)])
    duplicates = {
        "duplicate_in_window": int(in_window_dups.sum()),
        "delivered_in_earlier_window": int(earlier.sum()),
    }

    # Of the context, only rows that share a reader, a session or a page view with the window's own
    # events can change them (sessions are inferred per reader, starts are per session, heartbeats
    # per page view): the rest has done its work (the duplicates above) and is not cleaned.
    seen_before = seen_before[_shares_someone(seen_before, own)]
    both = pd.concat([seen_before, own], ignore_index=True)
    del own
    both["_own"] = np.arange(len(both)) >= len(seen_before)
    both["reader_id"] = both["domain_userid"].fillna(both["amp_client_id"]).astype("string")
    both["page_host"], both["page_path"] = normalize_pages(both["page_urlhost"], both["page_urlpath"])
    both["session_id"] = _infer_sessions(both, pd.Timedelta(minutes=settings.session_timeout_minutes))
    both["session_start_tstamp"] = session_starts(both, carried.session_starts)
    # The pings, keyed as later windows will look them up: the window's own are looked up in the
    # carried state; the context's count too in the highest AMP total handed on.
    all_pings = both["event_name"].isin(["page_ping", "amp_page_ping"]).to_numpy(dtype=bool, na_value=False)
    all_keys = page_view_keys(both.loc[all_pings])
    own_ping = both["_own"].to_numpy()[all_pings]
    pings = all_pings & both["_own"].to_numpy()
    ping_keys = all_keys[own_ping]
    credited = np.zeros(len(both), dtype=bool)
    amp_before = np.zeros(len(both))
    if len(carried.page_views):
        known = carried.page_views.reindex(ping_keys)
        credited[pings] = carried.page_views.index.get_indexer(ping_keys) >= 0
        amp_before[pings] = known.fillna(0.0).to_numpy()
    both["engaged_increment_seconds"] = engaged_increments(
        both, settings.ping_interval_seconds, MIN_VISIT_SECONDS, credited, amp_before
    )
    totals = pd.Series(both.loc[all_pings, "amp_engaged_seconds"].to_numpy(dtype="float64"), index=all_keys)
    amp_totals = totals.groupby(level=0).max().reindex(np.unique(ping_keys))
    amp_totals[:] = np.fmax(amp_totals.to_numpy(), carried.page_views.reindex(amp_totals.index).to_numpy())
    events = both.loc[both["_own"], list(CLEAN_DTYPES)]
    del both
    events = events.astype(CLEAN_DTYPES)
    events.index = pd.RangeIndex(len(events))  # as reset_index(drop=True), without another copy
    state = reading_state(events["session_id"], events["session_start_tstamp"], ping_keys, amp_totals)
    return CleanWindow(events, duplicates, state)

"""Engaged time as Snowplow's page-ping model counts it (docs/contract.md, section 4): each
heartbeat window with a ping adds `ping_interval_seconds`, the first adds the minimum visit, AMP
pings add the rise of their cumulative engaged time; a page view read across two windows is
counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.codes import pair_codes, string_codes

# Snowplow's web tracker pings after a 5 s minimum visit, then once per heartbeat.
MIN_VISIT_SECONDS = 5


def engaged_increments(
    frame: pd.DataFrame,
    heartbeat: int,
    min_visit: int,
    credited_before: np.ndarray | None = None,
    amp_total_before: np.ndarray | None = None,
) -> pd.Series:
    """Reading seconds each ping adds, in the order of `frame` (context rows first).

    Web (Snowplow's web model): a page view's engaged time is heartbeat x (distinct heartbeat
    windows - 1) + min_visit. So its first heartbeat window adds `min_visit`, every further new one
    adds `heartbeat`, and a ping in a window already seen adds nothing. AMP: pings carry the
    cumulative engaged time, so each adds what it raises the page view's maximum by.

    What windows before the frame knew (ingestion/state.py), per row: `credited_before`, the page
    view already got its first heartbeat (so its first one here adds `heartbeat`);
    `amp_total_before`, the highest AMP total already counted for it.
    """
    increments = pd.Series(0.0, index=frame.index)
    web = (frame["event_name"] == "page_ping").to_numpy(dtype=bool, na_value=False)
    amp = ((frame["event_name"] == "amp_page_ping") & frame["amp_engaged_seconds"].notna()).to_numpy(
        dtype=bool, na_value=False
    )
    if not (web.any() or amp.any()):
        return increments
    # Integer codes rather than joined strings: a window has a million rows.
    page_view, _ = string_codes(frame["page_view_id"])
    session, _ = string_codes(frame["session_id"])
    # Without a page view id (some trackers), a page view is the page within the reader's session.
    reader, _ = string_codes(frame["reader_id"])
    path, _ = string_codes(frame["page_path"])
    no_id = pair_codes(pair_codes(reader, session), path)
    has_id = page_view >= 0
    # Page view id and session together, as Snowplow's model groups pings (see the module note);
    # the two kinds of key kept apart by their sign.
    key = np.where(has_id, pair_codes(page_view, session), -1 - no_id)
    if web.any():
        seconds = frame["dvce_created_tstamp"].astype("int64").to_numpy() // 1_000_000_000
        pings = pd.DataFrame({"key": key[web], "window": seconds[web] // heartbeat})
        new_window = ~pings.duplicated(["key", "window"])
        first_window = new_window & ~pings["key"].where(new_window).duplicated()
        first = np.full(len(pings), float(min_visit))
        if credited_before is not None:
            first[credited_before[web]] = float(heartbeat)
        increments[web] = np.where(first_window, first, np.where(new_window, float(heartbeat), 0.0))
    if amp.any():
        total = frame.loc[amp, "amp_engaged_seconds"].astype("float64")
        # AMP's total is cumulative over the page view, whatever session the platform infers
        # for it (AMP sends no session id), so it is keyed by the page view alone.
        amp_key = pd.Series(np.where(has_id, page_view, -1 - no_id)[amp], index=total.index)
        before = total.groupby(amp_key, sort=False).cummax().groupby(amp_key, sort=False).shift(1).fillna(0.0)
        if amp_total_before is not None:
            before = np.maximum(before, amp_total_before[amp])
        increments[amp] = (total - before).clip(lower=0.0)
    return increments

"""Engaged time as Snowplow's page-ping model counts it (CONTRACT.md): each heartbeat window with
a ping adds `ping_interval_seconds`, the first adds the minimum visit, AMP pings add the rise of
their cumulative engaged time; a page view read across two windows is counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Snowplow's web tracker pings after a 5 s minimum visit, then once per heartbeat.
MIN_VISIT_SECONDS = 5


def engaged_increments(frame: pd.DataFrame, heartbeat: int, min_visit: int) -> pd.Series:
    """Reading seconds each ping adds, in the order of `frame` (context rows first).

    Web (Snowplow's web model): a page view's engaged time is heartbeat x (distinct heartbeat
    windows - 1) + min_visit. So its first heartbeat window adds `min_visit`, every further new one
    adds `heartbeat`, and a ping in a window already seen adds nothing. AMP: pings carry the
    cumulative engaged time, so each adds what it raises the page view's maximum by.
    """
    increments = pd.Series(0.0, index=frame.index)
    key = frame["page_view_id"].astype(object)
    no_id = key.isna()
    if no_id.any():  # trackers without a page view id: the page within the reader's session
        rows = frame[no_id]
        key[no_id] = (
            rows["reader_id"].fillna("")
            + "|"
            + rows["session_id"].fillna("")
            + "|"
            + rows["page_path"].fillna("")
        )
    web = frame["event_name"] == "page_ping"
    if web.any():
        pings = pd.DataFrame(
            {
                "key": key[web],
                "window": (frame.loc[web, "dvce_created_tstamp"].astype("int64") // 1_000_000_000)
                // heartbeat,
            }
        )
        new_window = ~pings.duplicated(["key", "window"])
        first_window = new_window & ~pings["key"].where(new_window).duplicated()
        increments[web] = np.where(
            first_window, float(min_visit), np.where(new_window, float(heartbeat), 0.0)
        )
    amp = (frame["event_name"] == "amp_page_ping") & frame["amp_engaged_seconds"].notna()
    if amp.any():
        total = frame.loc[amp, "amp_engaged_seconds"].astype("float64")
        amp_key = key[amp]
        before = total.groupby(amp_key, sort=False).cummax().groupby(amp_key, sort=False).shift(1).fillna(0.0)
        increments[amp] = (total - before).clip(lower=0.0)
    return increments

"""Weeks of a site's reading written straight as sessionized interactions, without the events.

A large site's 28 days are ~100M events: rendering them as JSON lines and parsing them back
would take hours, so benchmarks generate the history's per-window interactions directly and keep
only the newest hours as real events (`generate_site`). Both draw the same articles and readers
(`draw_readership` with the same arguments), and the sessions follow the same model as
`generate_site`'s: a reader drawn by activity, a session topic from the reader's preferences,
1 + Geometric(0.35) page views, 12 % of them section pages, 85 % on the session's topic, articles
by appeal decaying with age (each read once a session), log-normal dwell times with pings every heartbeat.

Simplifications, vectorized per hour: an article's pull is taken at the middle of its hour, a
page view belongs wholly to the window it starts in (its later pings are not split across the
window's end), and the few views of a session that start after its window has ended are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.sessions import INTERACTION_DTYPES
from article_rec_assets.settings.sites import SiteConfig
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_demo.generator.clickstream import (
    HEARTBEAT_SECONDS,
    HOURLY_TRAFFIC,
    MIN_VISIT_SECONDS,
    _article_weights,
    draw_readership,
)
from article_rec_demo.sites import as_demo_site

_HISTORY_STREAM = 0x68697374
_DRAW_ROUNDS = 8


def _session_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    high, low = rng.integers(0, 2**63, size=(2, count), dtype=np.int64)
    return np.array(
        [f"{h:016x}{lo:016x}" for h, lo in zip(high.tolist(), low.tolist(), strict=True)], dtype=object
    )


def generate_history(
    site: SiteConfig,
    world_start: datetime,
    world_end: datetime,
    history_start: datetime,
    history_end: datetime,
    seed: int | None = None,
) -> Iterator[tuple[datetime, pd.DataFrame]]:
    """Each two-hour window of [history_start, history_end) as `sessionize` would have written it,
    for the readers and articles of `generate_site(site, ..., world_start, world_end, seed)`.

    The articles published before `history_start` come from the site's `backlist_days`, so
    `history_start` should not be earlier than `world_start - backlist_days`."""
    site = as_demo_site(site)
    if site.demo is None:
        raise ValueError(f"site {site.name!r} has no generator settings in article_rec_demo/sites/")
    demo = site.demo
    seed = demo.seed if seed is None else seed
    world = draw_readership(demo, world_start, world_end, seed)
    rng = np.random.default_rng([seed, _HISTORY_STREAM])
    external_ids = np.array([a.external_id for a in world.articles], dtype=object)
    paths = np.array([a.path for a in world.articles], dtype=object)
    reader_ids = np.array(world.reader_ids, dtype=object)
    activity = np.cumsum(world.activity)
    preferences = np.cumsum(world.preferences, axis=1)
    n_topics = len(demo.topics)
    hourly_share = HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum()
    interval = float(site.events.ping_interval_seconds)

    def topic_of(readers: np.ndarray) -> np.ndarray:
        cum = preferences[readers]
        return (rng.random(len(readers))[:, None] * cum[:, -1:] > cum).sum(axis=1).clip(max=n_topics - 1)

    window = history_start
    while window < history_end:
        parts = []
        for h in range(WINDOW_HOURS):
            hour = window + timedelta(hours=h)
            n = int(rng.poisson(demo.sessions_per_day * hourly_share[hour.hour]))
            if n == 0:
                continue
            readers = np.searchsorted(activity, rng.random(n) * activity[-1], side="right").clip(
                max=len(reader_ids) - 1
            )
            session_topic = topic_of(readers)
            views = 1 + rng.geometric(0.35, size=n)
            session = np.repeat(np.arange(n), views)
            reader = readers[session]
            dwell = np.minimum(rng.lognormal(math.log(70), 0.8, size=len(session)), 1800.0)
            section_page = rng.random(len(session)) < 0.12
            dwell[section_page] = 8.0
            step = dwell + rng.uniform(2, 30, size=len(session))
            # Each view starts after the session's earlier views and their gaps.
            before = np.cumsum(step) - step
            first = np.repeat(before[np.cumsum(views) - views], views)
            t = hour.timestamp() + rng.uniform(0, 3600, size=n)[session] + (before - first)
            topic = np.where(rng.random(len(session)) < 0.85, session_topic[session], topic_of(reader))
            article = np.full(len(session), -1)
            pull = _article_weights(world.appeal, world.published, hour.timestamp() + 1800)
            by_topic = [np.cumsum(pull * (world.topics == k)) for k in range(n_topics)]
            todo = ~section_page
            # A session reads an article once: a repeat is drawn again (as `generate_site` draws
            # among the articles not yet seen), a few rounds, then dropped.
            for _ in range(_DRAW_ROUNDS):
                for k, cum in enumerate(by_topic):
                    rows = np.flatnonzero(todo & (topic == k))
                    if len(rows) and cum[-1] > 0:
                        picked = np.searchsorted(cum, rng.random(len(rows)) * cum[-1], side="right")
                        article[rows] = picked.clip(max=len(cum) - 1)
                pairs = pd.Series(session * len(pull) + article)
                todo = (pairs.duplicated() & (article >= 0)).to_numpy()
                if not todo.any():
                    break
            article[todo] = -1
            keep = article >= 0
            ids = _session_ids(rng, n)
            parts.append(
                pd.DataFrame(
                    {
                        "session": session[keep],
                        "reader_id": reader_ids[reader[keep]],
                        "session_id": ids[session[keep]],
                        "article": article[keep],
                        "t": t[keep],
                        "dwell": dwell[keep],
                    }
                )
            )
        window_end = window + timedelta(hours=WINDOW_HOURS)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if len(frame):
            frame = frame[frame["t"] < window_end.timestamp()]
        yield window, _as_interactions(frame, external_ids, paths, interval)
        window = window_end


def _as_interactions(
    frame: pd.DataFrame, external_ids: np.ndarray, paths: np.ndarray, interval: float
) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in INTERACTION_DTYPES.items()})
    dwell = frame["dwell"].to_numpy()
    pings = np.where(
        dwell >= MIN_VISIT_SECONDS, (dwell - MIN_VISIT_SECONDS) // HEARTBEAT_SECONDS + 1, 0
    ).astype("int64")
    started = pd.to_datetime(frame["t"].to_numpy(), unit="s", utc=True)
    last = started + pd.to_timedelta(
        np.where(pings > 0, MIN_VISIT_SECONDS + HEARTBEAT_SECONDS * (pings - 1), 0), unit="s"
    )
    article = frame["article"].to_numpy()
    out = pd.DataFrame(
        {
            "reader_id": frame["reader_id"].to_numpy(),
            "session_id": frame["session_id"].to_numpy(),
            "external_id": external_ids[article],
            "article_path": paths[article],
            "day": started.floor("D"),
            "page_views": np.ones(len(frame), dtype="int64"),
            "pings": pings,
            # Snowplow's web model: the first heartbeat window counts the minimum visit.
            "engaged_seconds": np.where(
                pings > 0, MIN_VISIT_SECONDS + HEARTBEAT_SECONDS * (pings - 1.0), 0.0
            ),
            "ping_dwell_seconds": pings * interval,
            "first_seen": started,
            "last_seen": last,
        }
    )
    out = out.sort_values(["reader_id", "session_id", "external_id", "day"], ignore_index=True)
    return out[list(INTERACTION_DTYPES)].astype(INTERACTION_DTYPES)

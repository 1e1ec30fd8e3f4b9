import numpy as np
import pandas as pd

from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.click_log import NO_ARTICLE, click_log

T0 = pd.Timestamp("2024-05-02T00:00:00Z")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def log_of(sessions: dict[tuple[str, str], list[tuple[int, pd.Timestamp]]]):
    """A click log from {(reader, session): [(article, time), ...]}."""
    rows = [
        (reader, session, article, stamp)
        for (reader, session), clicks in sessions.items()
        for article, stamp in clicks
    ]
    return click_log(pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"]))


def random_clicks(
    end: pd.Timestamp,
    span: pd.Timedelta,
    seed: int,
    clicks: int = 3000,
    sessions: int = 400,
    readers: int = 40,
    articles: int = 60,
) -> pd.DataFrame:
    """A click table of `clicks` random clicks in the `span` before `end`: session s (of
    `sessions`) is read by reader s % `readers`, on `articles` articles, repeats included."""
    rng = np.random.default_rng(seed)
    session = rng.integers(0, sessions, clicks)
    return pd.DataFrame(
        {
            "reader_id": (session % readers).astype(str),
            "session_id": session.astype(str),
            "article_id": rng.integers(0, articles, clicks).astype(str),
            "timestamp": end - pd.to_timedelta(rng.integers(1, int(span.total_seconds()), clicks), unit="s"),
        }
    )


def codes(log, ids) -> np.ndarray:
    lookup = {article: code for code, article in enumerate(log.article_ids)}
    return np.array([lookup[i] for i in ids], dtype=np.int64)


def ids(log, lists: np.ndarray) -> list[list[int]]:
    return [[int(log.article_ids[c]) for c in row if c != NO_ARTICLE] for row in lists]


# A training day before T0 (train_days=1) and a test window after it.
#   window clicks: 1: 4, 2: 5, 3: 2, 4: 2, 5: 3, 6: 2, 7: 1; last hour: 5: 2, 6: 2, 4: 1
#   fallback (last hour, then window clicks, then id): 5, 6, 4, 2, 1, 3, 7
HOURS = 60


HAND = {
    ("r0", "old"): [(1, at(-25 * HOURS)), (3, at(-25 * HOURS + 1))],  # before the window
    ("r1", "s1"): [(1, at(-20 * HOURS)), (2, at(-20 * HOURS + 1))],
    ("r2", "s2"): [(1, at(-19 * HOURS)), (2, at(-19 * HOURS + 1))],
    ("r3", "s3"): [(2, at(-18 * HOURS)), (3, at(-18 * HOURS + 1))],
    ("r3", "s4"): [(2, at(-17 * HOURS)), (4, at(-17 * HOURS + 1))],
    ("r4", "s5"): [(2, at(-16 * HOURS)), (5, at(-16 * HOURS + 1))],
    ("r4", "s6"): [(1, at(-15 * HOURS)), (7, at(-15 * HOURS + 1))],
    ("r5", "s7"): [(3, at(-14 * HOURS)), (1, at(-14 * HOURS + 1))],
    ("r6", "s8"): [(4, at(-50)), (5, at(-40)), (6, at(-30))],
    ("r7", "s9"): [(6, at(-20)), (5, at(-10))],
    # the test window [T0, T0 + 2 h)
    ("r8", "t1"): [(1, at(1)), (7, at(2))],
    ("r9", "t2"): [(4, at(5)), (6, at(6))],
    ("r9", "t3"): [(8, at(10)), (5, at(11)), (3, at(180))],
}


def recommend(recommender: Recommender, log, train, sources, k=4) -> list[list[int]]:
    recommender.fit(train, train.t0)
    return ids(log, recommender.recommend(codes(log, sources), k))

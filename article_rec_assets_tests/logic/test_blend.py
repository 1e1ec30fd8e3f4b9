"""The recency successor blend on hand-made click logs: exact rankings."""

import numpy as np
import pandas as pd
import pytest

from article_rec_assets.logic.blend import RecencySuccessorBlend
from article_rec_assets.logic.evaluation import NO_ARTICLE, click_log, training_clicks

T0 = pd.Timestamp("2024-05-02T00:00:00Z")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def fitted(sessions: dict[str, list[tuple[int, float]]], ties: str = "id", **settings):
    """A blend fitted at T0 on {session: [(article id, minutes from T0), ...]}, and a code lookup."""
    rows = [("r-" + s, s, article, at(m)) for s, clicks in sessions.items() for article, m in clicks]
    log = click_log(pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"]))
    train = training_clicks(log, T0, ties=ties)
    model = RecencySuccessorBlend(**settings)
    model.fit(train, T0)
    code = {int(a): c for c, a in enumerate(log.article_ids)}
    return model, code, log.article_ids


def lists_of(model, code, ids, sources, k):
    lists = model.recommend(np.array([code[s] for s in sources]), k)
    return [[int(ids[c]) if c != NO_ARTICLE else None for c in row] for row in lists]


SESSIONS = {
    "old-1": [(1, -600), (2, -599)],  # 1 -> 2 ten hours ago, twice
    "old-2": [(1, -600), (2, -599)],
    "recent": [(1, -11), (3, -10)],  # 1 -> 3 ten minutes ago, once
    "back": [(5, -20), (1, -19)],  # 5 -> 1: 5 is a backward neighbour of 1
}


def test_recent_transitions_outrank_older_more_frequent_ones():
    model, code, ids = fitted(SESSIONS, prior_weight=0.0)
    # 3 (one click 10 min ago) > 5 (backward, 19 min ago, x0.3) > 2 (two clicks 10 h ago); 4 slots empty.
    assert lists_of(model, code, ids, [1], 4) == [[3, 5, 2, None]]
    # 2's only neighbour is 1 (backward); 5's is 1 (forward).
    assert lists_of(model, code, ids, [2, 5], 2) == [[1, None], [1, None]]


def test_without_decay_difference_counts_win():
    # Decay times so long that ten hours barely matter: the twice-seen 2 comes first again.
    model, code, ids = fitted(
        SESSIONS, prior_weight=0.0, short_tau_hours=1e6, long_tau_hours=1e6, backward_weight=0.0
    )
    assert lists_of(model, code, ids, [1], 3) == [[2, 3, None]]


def test_prior_brings_in_brand_new_articles_and_never_the_source():
    sessions = {
        **SESSIONS,
        # Article 9, new, read in three sessions in the last 30 minutes, never next to 1 or 2.
        "new-1": [(9, -5)],
        "new-2": [(9, -4)],
        "new-3": [(9, -3), (1, -2)],  # 9 -> 1: also makes 9 a backward neighbour of 1
    }
    model, code, ids = fitted(sessions, prior_weight=10.0, prior_minutes=30)
    # Clicks of the last 30 min: 9 x3, 1 x3, 3 x1, 5 x1 (share of 8). For 2: backward 1 (tiny) + its
    # prior 10 * 3/8, then 9 (prior 10 * 3/8, ties by id: 1 before 9), then 3 and 5 (prior 10/8 each).
    assert lists_of(model, code, ids, [2], 4) == [[1, 9, 3, 5]]
    # For 1: 9 (backward, 2 min ago, plus the prior) beats 3 (forward, 10 min ago, plus a smaller prior).
    assert lists_of(model, code, ids, [1], 4) == [[9, 3, 5, 2]]


def test_decay_times_must_be_positive():
    with pytest.raises(ValueError):
        RecencySuccessorBlend(short_tau_hours=0)

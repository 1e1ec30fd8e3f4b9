"""The offline evaluation: folds, pairs, baselines, the popularity fill and the metrics, on hand-made logs."""

import numpy as np
from scipy import sparse

from article_rec_assets.recommenders.baselines import (
    ItemKNNCosine,
    LastHourPopularity,
    SessionCooccurrence,
    SuccessorCounts,
    WindowPopularity,
)
from article_rec_assets.recommenders.click_log import NO_ARTICLE, training_clicks
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets_tests.recommenders.clicks import T0, recommend

# ------------------------------------------------------------------------------------ baselines


def test_fallback_order_is_last_hour_then_window_clicks(hand):
    log, train = hand
    assert list(log.article_ids[train.fallback_order]) == [5, 6, 4, 2, 1, 3, 7]
    assert int(log.article_ids[train.catalogue].max()) == 7  # 8 is only clicked after t0


def test_popularity_baselines(hand):
    log, train = hand
    assert recommend(LastHourPopularity(), log, train, [1, 5, 8]) == [
        [5, 6, 4, 2],
        [6, 4, 2, 1],
        [5, 6, 4, 2],
    ]
    # window clicks 2: 5, 1: 4, 5: 3, then 6, 4, 3 with two each (by last hour: 2, 1, 0), 7: 1
    assert recommend(WindowPopularity(), log, train, [1, 2], k=6) == [[2, 5, 6, 4, 3, 7], [1, 5, 6, 4, 3, 7]]


def test_successor_counts(hand):
    log, train = hand
    # 1 -> 2 twice, 1 -> 7 once (3 -> 1 is the other direction; the old session is outside the window)
    assert recommend(SuccessorCounts(), log, train, [1, 4, 5, 8]) == [[2, 7], [5], [6], []]


def test_session_cooccurrence_breaks_ties_by_popularity_or_id(hand):
    log, train = hand
    # with 1: 2 in two sessions, 7 and 3 in one each; 3 is more popular than 7 and has the lower id
    assert recommend(SessionCooccurrence(), log, train, [1]) == [[2, 3, 7]]
    # with 2: 1 twice, then 3, 4, 5 once each: by last-hour popularity 5, 4, 3; by id 3, 4, 5
    assert recommend(SessionCooccurrence(), log, train, [2]) == [[1, 5, 4, 3]]
    by_id = training_clicks(log, T0, train_days=1, ties="id")
    assert recommend(SessionCooccurrence(), log, by_id, [2]) == [[1, 3, 4, 5]]


def test_item_knn_cosine(hand):
    log, train = hand
    # sessions with 1: 4, with 2: 5, with 3: 2, with 7: 1 -> cos(1,7) = 1/2, cos(1,2) = 2/sqrt(20),
    # cos(1,3) = 1/sqrt(8)
    assert recommend(ItemKNNCosine(), log, train, [1]) == [[7, 2, 3]]


def test_top_k_sparse_ties_and_self():
    scores = sparse.csr_matrix(np.array([[0, 2, 1, 1, 0], [3, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=float))
    out = top_k_sparse(scores, np.array([9, 0, 2]), 3, tiebreak=np.array([4, 3, 2, 1, 0]))
    assert out.tolist() == [[1, 3, 2], [NO_ARTICLE] * 3, [4, 3, 1]]


def test_top_k_sparse_trims_long_rows_exactly():
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 4, size=(30, 200)).astype(float)
    tiebreak = rng.permutation(200)
    out = top_k_sparse(sparse.csr_matrix(dense), np.zeros(30, dtype=np.int64), 5, tiebreak)
    for row, got in zip(dense, out, strict=True):
        candidates = [c for c in range(1, 200) if row[c] > 0]
        expected = sorted(candidates, key=lambda c: (-row[c], tiebreak[c]))[:5]
        assert got.tolist() == expected

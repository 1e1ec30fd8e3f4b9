"""The offline evaluation: folds, pairs, baselines, the popularity fill and the metrics, on hand-made logs."""

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from article_rec_assets.evaluation.datasets import read_click_log, read_g1
from article_rec_assets.evaluation.folds import fold_pairs, fold_starts, session_pairs
from article_rec_assets.evaluation.metrics import rank_metrics, summarize
from article_rec_assets.evaluation.replay import evaluate, evaluate_fold
from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.baselines import (
    LastHourPopularity,
    SuccessorCounts,
)
from article_rec_assets.recommenders.click_log import NO_ARTICLE, TrainingClicks, click_log, training_clicks
from article_rec_assets.recommenders.top_k import fill_with_fallback
from article_rec_assets_tests.recommenders.clicks import T0, at, log_of
from article_rec_assets_tests.support import SHARED_DATA, shared_data_or_skip

G1 = SHARED_DATA / "globo-g1"

# ------------------------------------------------------------------------------------ loading


def test_click_log_sorts_by_session_and_time_and_keeps_readers_apart():
    frame = pd.DataFrame(
        {
            "reader_id": ["b", "a", "a", "b"],
            "session_id": [1, 1, 1, 1],  # the same session id for two readers: two sessions
            "article_id": ["y", "x", "z", "w"],
            "timestamp": [
                "2024-05-01T10:05:00Z",
                "2024-05-01T10:01:00Z",
                "2024-05-01T10:00:00Z",
                "2024-05-01T10:00",
            ],
            "published_at": [None, "2024-04-30T00:00:00Z", None, None],
        }
    )
    log = click_log(frame)
    assert list(log.article_ids) == ["w", "x", "y", "z"]
    assert [log.article_ids[a] for a in log.article] == ["z", "x", "w", "y"]
    assert list(log.session) == [0, 0, 1, 1]
    assert log.timestamp[0] == pd.Timestamp("2024-05-01T10:00:00Z").value // 1_000_000
    assert np.isnan(log.published_ms[0])
    assert log.published_ms[1] == pd.Timestamp("2024-04-30T00:00:00Z").value // 1_000_000
    pairs = session_pairs(log)
    assert [
        (log.article_ids[a], log.article_ids[b]) for a, b in zip(pairs.source, pairs.target, strict=True)
    ] == [
        ("z", "x"),
        ("w", "y"),
    ]


def test_click_log_needs_its_columns():
    with pytest.raises(ValueError, match="lacks columns"):
        click_log(pd.DataFrame({"reader_id": [1], "article_id": [1], "timestamp": [0]}))


def test_read_click_log_with_an_articles_table(tmp_path):
    clicks = tmp_path / "clicks.csv"
    pd.DataFrame(
        {
            "reader_id": [1, 1],
            "session_id": [7, 7],
            "article_id": [10, 11],
            "timestamp": ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"],
        }
    ).to_csv(clicks, index=False)
    articles = tmp_path / "articles.csv"
    pd.DataFrame(
        {"article_id": [11, 99], "published_at": ["2024-04-01T00:00:00Z", "2024-04-02T00:00:00Z"]}
    ).to_csv(articles, index=False)
    log = read_click_log(clicks, articles)
    assert list(log.article_ids) == [10, 11]
    assert np.isnan(log.published_ms[0])
    assert log.published_ms[1] == pd.Timestamp("2024-04-01T00:00:00Z").value // 1_000_000


def test_read_g1_reads_the_hourly_files_and_publish_times(tmp_path):
    (tmp_path / "clicks").mkdir()
    header = (
        "user_id,session_id,session_start,session_size,click_article_id,click_timestamp,click_environment,"
        "click_deviceGroup,click_os,click_country,click_region,click_referrer_type\n"
    )
    rows = [
        "5,100,1506825423000,2,30,1506826858020,4,3,20,1,20,2\n",
        "5,100,1506825423000,2,20,1506826828020,4,3,20,1,20,2\n",
    ]
    with gzip.open(tmp_path / "clicks" / "clicks_hour_000.csv.gz", "wt") as f:
        f.write(header + "".join(rows))
    with gzip.open(tmp_path / "clicks" / "clicks_hour_001.csv.gz", "wt") as f:
        f.write(header)  # an hour without clicks
    (tmp_path / "articles_metadata_partial.csv").write_text(
        "article_id,category_id,created_at_ts,publisher_id,words_count\n20,1,1506800000000,0,100\n"
    )
    log = read_g1(tmp_path)
    assert list(log.article_ids[log.article]) == [20, 30]  # by time within the session
    assert list(log.timestamp) == [1506826828020, 1506826858020]
    assert log.published_ms[0] == 1506800000000 and np.isnan(log.published_ms[1])


# ------------------------------------------------------------------------------------ folds


def test_fold_starts_are_every_even_utc_hour():
    starts = fold_starts(["2017-10-08"])
    assert len(starts) == 12
    assert starts[0] == pd.Timestamp("2017-10-08T00:00Z") and starts[-1] == pd.Timestamp("2017-10-08T22:00Z")


def test_pairs_fall_in_the_fold_of_their_second_click():
    log = log_of(
        {
            ("r", "s"): [
                (1, at(-130)),
                (2, at(-30)),  # 1 -> 2 belongs to the fold before
                (3, at(0)),  # 2 -> 3: b exactly at t0 is in
                (3, at(1)),  # 3 -> 3: a reload, not a pair
                (4, at(119.99)),  # 3 -> 4: in
                (5, at(120)),  # 4 -> 5: b at t0 + 2 h is the next fold's
            ],
            ("q", "s"): [(6, at(-1)), (7, at(60))],  # another reader's session with the same id: in
        }
    )
    pairs = session_pairs(log)
    fold = fold_pairs(pairs, T0)
    got = sorted(zip(log.article_ids[fold.source], log.article_ids[fold.target], strict=True))
    assert got == [(2, 3), (3, 4), (6, 7)]
    later = fold_pairs(pairs, T0 + pd.Timedelta(hours=2))
    assert list(zip(log.article_ids[later.source], log.article_ids[later.target], strict=True)) == [(4, 5)]


def test_training_window_is_half_open_and_nothing_from_t0_on_leaks(hand):
    log = log_of(
        {
            ("r", "a"): [(1, at(-24 * 60) - pd.Timedelta(milliseconds=1)), (2, at(-24 * 60))],
            ("r", "b"): [(3, at(-0.001)), (4, at(0)), (5, at(5))],
        }
    )
    train = training_clicks(log, T0, train_days=1)
    assert sorted(log.article_ids[train.article]) == [2, 3]
    assert sorted(log.article_ids[train.catalogue]) == [2, 3]
    # the pair 3 -> 4 straddles t0: it is a test pair, never a training successor
    assert train.successor_pairs()[0].size == 0


class Spy(Recommender):
    name = "spy"

    def __init__(self):
        self.seen: list[tuple[pd.Timestamp, int, int]] = []

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        self.seen.append((t0, int(train.timestamp.min()), int(train.timestamp.max())))

    def recommend(self, source_ids, k):
        return np.full((len(source_ids), k), NO_ARTICLE)


def test_every_pair_of_a_day_is_tested_once_and_training_stops_before_t0():
    rng = np.random.default_rng(3)
    rows = []
    start = pd.Timestamp("2024-05-01T00:00Z")
    for s in range(400):
        begin = start + pd.Timedelta(minutes=float(rng.uniform(0, 3 * 24 * 60)))
        for j in range(int(rng.integers(2, 5))):
            rows.append((f"r{s % 50}", s, int(rng.integers(0, 30)), begin + pd.Timedelta(minutes=3 * j)))
    log = click_log(pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"]))
    spy = Spy()
    folds = evaluate(log, ["2024-05-02", "2024-05-03"], [spy], train_days=1, k=3)
    pairs = session_pairs(log)
    for day in ("2024-05-02", "2024-05-03"):
        lo = pd.Timestamp(day, tz="UTC").value // 1_000_000
        expected = int(((pairs.timestamp >= lo) & (pairs.timestamp < lo + 86_400_000)).sum())
        assert folds.loc[folds["day"] == day, "pairs"].sum() == expected > 0
    assert len(spy.seen) == 24
    for t0, first, last in spy.seen:
        t0_ms = t0.value // 1_000_000
        assert last < t0_ms and first >= t0_ms - 86_400_000
    # --hours: only the folds starting at those hours, the same pairs as in the full replay.
    some = evaluate(log, ["2024-05-02", "2024-05-03"], [Spy()], train_days=1, k=3, hours=[8, 14])
    assert sorted(some["t0"].dt.hour.unique()) == [8, 14] and len(some) == 4
    full = folds.set_index("t0")["pairs"]
    assert (some.set_index("t0")["pairs"] == full.loc[some["t0"]]).all()


# ------------------------------------------------------------------------------------ the fill


def test_fill_skips_the_source_and_listed_articles():
    lists = np.array([[3, NO_ARTICLE, NO_ARTICLE], [NO_ARTICLE, 2, NO_ARTICLE], [7, 8, 9], [NO_ARTICLE] * 3])
    sources = np.array([5, 1, 0, 2])
    filled, count = fill_with_fallback(lists, sources, fallback_order=np.array([5, 2, 3, 1, 4]))
    assert filled.tolist() == [[3, 2, 1], [2, 5, 3], [7, 8, 9], [5, 3, 1]]
    assert count.tolist() == [2, 2, 0, 3]


def test_fill_stops_when_the_catalogue_runs_out():
    filled, count = fill_with_fallback(np.array([[NO_ARTICLE] * 3]), np.array([1]), np.array([1, 2]))
    assert filled.tolist() == [[2, NO_ARTICLE, NO_ARTICLE]] and count.tolist() == [1]


# ------------------------------------------------------------------------------------ metrics


def test_rank_metrics_by_hand():
    lists = np.array([[5, 1, 2], [1, 5, 2], [1, 2, 5], [1, 2, 3], [NO_ARTICLE] * 3])
    hit, reciprocal, ndcg = rank_metrics(lists, np.array([5, 5, 5, 5, 5]))
    assert hit.tolist() == [True, True, True, False, False]
    assert reciprocal == pytest.approx([1, 0.5, 1 / 3, 0, 0])
    assert ndcg == pytest.approx([1, 1 / math.log2(3), 0.5, 0, 0])


def test_a_fold_scored_by_hand(hand):
    log, train = hand
    pairs = fold_pairs(session_pairs(log), T0)
    (result,) = evaluate_fold(train, pairs, [SuccessorCounts()], k=4, day="2024-05-02")
    # 1 -> 7: [2, 7 | 5, 6] rank 2;  4 -> 6: [5 | 6, 2, 1] rank 2;  8 -> 5 (8 unseen): [| 5, 6, 4, 2] rank 1
    assert result.pairs == 3 and result.hits == 3 and result.cold_sources == 1
    assert result.reciprocal_rank == pytest.approx(0.5 + 0.5 + 1)
    assert result.ndcg == pytest.approx(2 / math.log2(3) + 1)
    assert result.fill_slots == 2 + 3 + 4 and result.filled_pairs == 3
    assert (result.covered, result.catalogue) == (6, 7)  # 1, 2, 4, 5, 6, 7 served; 3 never

    summary = summarize(pd.DataFrame([result.__dict__]), k=4)
    day = summary[summary["day"] == "2024-05-02"].iloc[0]
    assert day["HR@4"] == 1 and day["MRR@4"] == pytest.approx(2 / 3)
    assert day["fallback share"] == pytest.approx(9 / 12) and day["coverage"] == pytest.approx(6 / 7)
    assert summary["day"].tolist() == ["2024-05-02", "total"]


def test_evaluate_fold_refuses_a_list_with_the_source(hand):
    log, train = hand

    class Cheat(Recommender):
        name = "cheat"

        def fit(self, train, t0):
            pass

        def recommend(self, source_ids, k):
            lists = np.full((len(source_ids), k), NO_ARTICLE)
            known = train.in_catalogue()[source_ids]
            lists[known, 0] = np.asarray(source_ids)[known]
            return lists

    with pytest.raises(ValueError, match="for itself"):
        evaluate_fold(train, fold_pairs(session_pairs(log), T0), [Cheat()], k=2)


# ------------------------------------------------------------------------------------ real data


def test_one_fold_of_the_real_g1_files():
    log = read_g1(shared_data_or_skip(G1))
    pairs = session_pairs(log)
    day = fold_starts(["2017-10-08"])
    assert sum(len(fold_pairs(pairs, t0)) for t0 in day) == 68_923  # PROVENANCE.md's count
    t0 = day[10]  # 20:00 UTC
    results = evaluate_fold(
        training_clicks(log, t0), fold_pairs(pairs, t0), [LastHourPopularity(), SuccessorCounts()], day="x"
    )
    by_name = {r.recommender: r for r in results}
    assert by_name["last-hour popularity"].pairs == 10_170
    for result, low, high in (
        (by_name["last-hour popularity"], 0.3, 0.5),
        (by_name["successor counts"], 0.3, 0.5),
    ):
        assert low < result.hits / result.pairs < high

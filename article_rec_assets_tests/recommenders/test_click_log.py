"""The training clicks: session pairs at each distance, and the log's next clicks (the ranker's
label windows take their pairs from them)."""

import numpy as np
import pandas as pd

from article_rec_assets.recommenders import click_log as click_log_module
from article_rec_assets.recommenders.click_log import PairSums, click_log, training_clicks
from article_rec_assets_tests.recommenders.clicks import random_clicks

T0 = pd.Timestamp("2026-03-02T00:00:00Z")


def random_log(seed: int = 7, clicks: int = 3000):
    """Clicks of 40 readers in 400 sessions over a day on 60 articles, repeats included."""
    return click_log(random_clicks(T0, pd.Timedelta(days=1), seed, clicks))


def test_the_logs_next_clicks_are_the_pairs_of_all_its_clicks_computed_once() -> None:
    log = random_log()
    everything = training_clicks(log, T0 + pd.Timedelta(minutes=1), 2)
    assert len(everything) == len(log)
    for whole, own in zip(log.next_clicks, everything.session_pairs(1), strict=True):
        np.testing.assert_array_equal(whole, own)
    assert all(a is b for a, b in zip(log.next_clicks, log.next_clicks, strict=True))


def test_pairs_are_summed_by_distinct_pair() -> None:
    train = training_clicks(random_log(), T0, 1)
    source, target, stamp = train.session_pairs(1)
    assert np.all(source != target) and np.all(stamp < T0.value // 10**6)
    for distance in (1, 2):
        source, target, stamp = train.session_pairs(distance)
        sums = PairSums.of(train, distance)
        end = T0.value // 10**6
        weights = np.exp(-(end - stamp) / 3_600_000 / 5.0)
        expected = (
            pd.DataFrame({"a": source, "b": target, "w": weights})
            .groupby(["a", "b"])["w"]
            .agg(["size", "sum"])
        )
        a, b = np.divmod(sums.keys, train.n_articles)
        assert list(zip(a, b, strict=True)) == list(expected.index)  # distinct, sorted
        np.testing.assert_array_equal(sums.sums(), expected["size"].to_numpy())
        np.testing.assert_allclose(sums.decayed(end, 5.0), expected["sum"].to_numpy(), rtol=1e-12)
        matrix = sums.matrix(sums.decayed(end, 5.0))
        reference = np.zeros((train.n_articles, train.n_articles))
        np.add.at(reference, (source, target), weights)
        np.testing.assert_allclose(matrix.toarray(), reference)
        assert matrix.has_sorted_indices


def test_codes_are_narrow_and_what_is_computed_from_them_is_not() -> None:
    log = random_log()
    assert log.article.dtype == log.session.dtype == log.reader.dtype == np.int32
    source, target, _ = log.next_clicks
    assert source.dtype == target.dtype == np.int64  # keys a * n + b of millions of articles


def test_clicks_are_ordered_by_session_then_time_then_arrival_on_either_sort() -> None:
    rng = np.random.default_rng(3)
    session = rng.integers(0, 50, 2000).astype(np.int64)
    timestamp = 1_700_000_000_000 + rng.integers(0, 20, 2000).astype(np.int64)  # many ties
    expected = np.lexsort((np.arange(2000), timestamp, session))
    np.testing.assert_array_equal(click_log_module._by_session_then_time(session, timestamp), expected)
    # Codes times the time span past an int64 key: the lexsort gives the same order.
    wide = timestamp.copy()
    wide[0] = 0  # a span of ~1.7e12 ms x 50 sessions no longer fits
    np.testing.assert_array_equal(
        click_log_module._by_session_then_time(session * 10**8, wide),
        np.lexsort((np.arange(2000), wide, session * 10**8)),
    )

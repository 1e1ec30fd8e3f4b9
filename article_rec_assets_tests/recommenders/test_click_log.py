"""The training clicks: session pairs at each distance, and the clicks before a time with the
pairs they would have on their own, taken from the whole's."""

import numpy as np
import pandas as pd

from article_rec_assets.recommenders.click_log import click_log, training_clicks

T0 = pd.Timestamp("2026-03-02T00:00:00Z")


def random_log(seed: int = 7, clicks: int = 3000):
    """Clicks of 40 readers in 400 sessions over a day on 60 articles, repeats included."""
    rng = np.random.default_rng(seed)
    session = rng.integers(0, 400, clicks)
    frame = pd.DataFrame(
        {
            "reader_id": (session % 40).astype(str),
            "session_id": session.astype(str),
            "article_id": rng.integers(0, 60, clicks).astype(str),
            "timestamp": T0 - pd.to_timedelta(rng.integers(0, 24 * 60, clicks), unit="min"),
        }
    )
    return click_log(frame)


def test_the_clicks_before_a_time_have_the_pairs_they_would_have_on_their_own() -> None:
    train = training_clicks(random_log(), T0, 1)
    start = T0 - pd.Timedelta(hours=5)
    earlier = train.before(start)
    assert earlier.t0 == start and len(earlier) == int(
        np.count_nonzero(train.timestamp < start.value // 10**6)
    )
    alone = training_clicks(random_log(), start, 1 - 5 / 24)  # the same clicks, not derived
    assert len(alone) == len(earlier)
    for distance in (1, 2, 3):
        for derived, own in zip(earlier.session_pairs(distance), alone.session_pairs(distance), strict=True):
            np.testing.assert_array_equal(derived, own)
        assert len(earlier.session_pairs(distance)[0]) < len(train.session_pairs(distance)[0])


def test_pairs_are_computed_once_per_distance() -> None:
    train = training_clicks(random_log(), T0, 1)
    first = train.session_pairs(2)
    assert all(a is b for a, b in zip(first, train.session_pairs(2), strict=True))
    source, target, stamp = train.session_pairs(1)
    assert np.all(source != target) and np.all(stamp < T0.value // 10**6)

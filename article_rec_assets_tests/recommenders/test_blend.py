"""The recency successor blend on hand-made click logs: exact rankings."""

import numpy as np
import pandas as pd
import pytest

from article_rec_assets.recommenders.blend import RecencySuccessorBlend
from article_rec_assets.recommenders.click_log import NO_ARTICLE, click_log, training_clicks
from article_rec_assets.settings.sites import BlendSettings
from article_rec_assets_tests.recommenders.clicks import random_clicks

T0 = pd.Timestamp("2024-05-02T00:00:00Z")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def fitted(
    sessions: dict[str, list[tuple[int, float]]],
    ties: str = "id",
    published_hours_ago: dict[int, float] | None = None,
    not_candidates: tuple[int, ...] = (),
    **settings,
):
    """A blend fitted at T0 on {session: [(article id, minutes from T0), ...]}, and a code lookup.

    `published_hours_ago` gives publish times (others unknown); `not_candidates` are clicked articles
    left out of the catalogue (as when only "recommendable" articles are candidates)."""
    # Hand-made logs are tiny: keep the decay times as given unless a test is about traffic.
    settings.setdefault("reference_clicks_per_hour", 1e-6)
    rows = [("r-" + s, s, article, at(m)) for s, clicks in sessions.items() for article, m in clicks]
    published = None
    if published_hours_ago:
        published = pd.Series({a: T0 - pd.Timedelta(hours=h) for a, h in published_hours_ago.items()})
    log = click_log(
        pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"]), published
    )
    train = training_clicks(log, T0, ties=ties)
    code = {int(a): c for c, a in enumerate(log.article_ids)}
    if not_candidates:
        candidate = train.in_catalogue().copy()
        candidate[[code[a] for a in not_candidates]] = False
        train.in_catalogue = lambda: candidate
    model = RecencySuccessorBlend(**settings)
    model.fit(train, T0)
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


# Successor counts alone: no co-visitation, no prior.
SUCCESSORS_ONLY = {"knn_weight": 0.0, "prior_weight": 0.0}


def test_recent_transitions_outrank_older_more_frequent_ones():
    model, code, ids = fitted(SESSIONS, **SUCCESSORS_ONLY)
    # 3 (one click 10 min ago) > 5 (backward, 19 min ago, x0.3) > 2 (two clicks 10 h ago); 4 slots empty.
    assert lists_of(model, code, ids, [1], 4) == [[3, 5, 2, None]]
    # 2's only neighbour is 1 (backward); 5's is 1 (forward).
    assert lists_of(model, code, ids, [2, 5], 2) == [[1, None], [1, None]]


def test_without_decay_difference_counts_win():
    # Decay times so long that ten hours barely matter: the twice-seen 2 comes first again.
    model, code, ids = fitted(
        SESSIONS, **SUCCESSORS_ONLY, short_tau_hours=1e6, long_tau_hours=1e6, backward_weight=0.0
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
    model, code, ids = fitted(sessions, knn_weight=0.0, prior_weight=10.0, prior_minutes=30)
    # Clicks of the last 30 min: 9 x3, 1 x3, 3 x1, 5 x1 (share of 8). For 2: backward 1 (tiny) + its
    # prior 10 * 3/8, then 9 (prior 10 * 3/8, ties by id: 1 before 9), then 3 and 5 (prior 10/8 each).
    assert lists_of(model, code, ids, [2], 4) == [[1, 9, 3, 5]]
    # For 1: 9 (backward, 2 min ago, plus the prior) beats 3 (forward, 10 min ago, plus a smaller prior).
    assert lists_of(model, code, ids, [1], 4) == [[9, 3, 5, 2]]


def test_clicks_two_steps_later_count_at_a_quarter():
    sessions = {
        "chain": [(1, -30), (2, -29), (3, -28)],  # 1 -> 2 -> 3 half an hour ago
        "old": [(1, -600), (5, -599)],  # 1 -> 5 ten hours ago
    }
    # Immediate successors only: 2, then the old 5.
    model, code, ids = fitted(sessions, **SUCCESSORS_ONLY, max_distance=1)
    assert lists_of(model, code, ids, [1], 3) == [[2, 5, None]]
    # 3, two clicks after 1 half an hour ago (x0.25: about 0.16), passes the ten-hour-old 5 (about 0.01).
    model, code, ids = fitted(sessions, **SUCCESSORS_ONLY)
    assert lists_of(model, code, ids, [1], 3) == [[2, 3, 5]]
    # Backwards too: for 3, 2 (one step before) then 1 (two steps before).
    assert lists_of(model, code, ids, [3], 3) == [[2, 1, None]]


def test_freshly_published_articles_are_boosted():
    sessions = {
        "s1": [(1, -20), (2, -19)],
        "s2": [(1, -20), (2, -19)],
        "s3": [(1, -20), (3, -19)],
        "s4": [(1, -20), (4, -19)],
    }
    published = {2: 48, 3: 1, 4: 30}  # 3 an hour old, 4 half an hour; 2 two days old, 1 unknown
    # Without the boost the twice-seen 2 leads, then 3 and 4 (equal, ties by id).
    model, code, ids = fitted(
        sessions, published_hours_ago=published, **SUCCESSORS_ONLY, freshness_weight=0.0
    )
    assert lists_of(model, code, ids, [1], 3) == [[2, 3, 4]]
    # Boost 1 + 3 exp(-age / 3 h): 3 gets x3.15 (beats 2's x2 count), 4 (30 h old) only x1.0001.
    model, code, ids = fitted(sessions, published_hours_ago=published, **SUCCESSORS_ONLY)
    assert lists_of(model, code, ids, [1], 3) == [[3, 2, 4]]
    # A source of unknown publish time gets no boost of its own: 1 is just 2's backward neighbour.
    assert lists_of(model, code, ids, [2], 2) == [[1, None]]


def test_covisitation_adds_articles_read_in_the_same_sessions():
    sessions = {
        "long": [(1, -40), (2, -39), (3, -38), (4, -37)],  # 4 is three clicks after 1
        "again": [(1, -50), (2, -49)],
        "other": [(5, -40), (6, -39)],
    }
    model, code, ids = fitted(sessions, **SUCCESSORS_ONLY)
    assert lists_of(model, code, ids, [1], 4) == [[2, 3, None, None]]
    # implicit's cosine: 4 shares one of 1's two sessions (about 1/sqrt(2)); 5 and 6 never meet 1.
    model, code, ids = fitted(sessions, prior_weight=0.0)
    assert lists_of(model, code, ids, [1], 4) == [[2, 3, 4, None]]
    scores = model.score_rows(np.array([code[1]])).toarray()[0]
    assert scores[code[4]] == pytest.approx(1 / np.sqrt(2), abs=0.01)
    assert scores[code[5]] == scores[code[6]] == 0.0
    # Only the knn_neighbours nearest are kept: with one, 1's is 2 (cosine about 1), so 4 drops out.
    model, code, ids = fitted(sessions, prior_weight=0.0, knn_neighbours=1)
    assert lists_of(model, code, ids, [1], 4) == [[2, 3, None, None]]


def test_only_catalogue_articles_score():
    sessions = {
        **SESSIONS,
        "new-1": [(3, -5), (1, -4)],  # 3 is also the most clicked of the last 15 minutes
        "new-2": [(3, -3), (2, -2)],
    }
    model, code, ids = fitted(sessions)
    assert lists_of(model, code, ids, [1], 2)[0][0] == 3
    # 3 clicked but not a candidate: never listed, zero in every row (prior included), still a source.
    model, code, ids = fitted(sessions, not_candidates=(3,))
    rows = model.score_rows(np.array([code[a] for a in (1, 2, 3, 5)]))
    assert rows.shape == (4, len(ids))
    assert (rows.toarray()[:, code[3]] == 0).all() and (rows.data >= 0).all()
    assert lists_of(model, code, ids, [1, 3], 3) == [[2, 5, None], [1, 2, None]]


def test_decay_times_must_be_positive():
    with pytest.raises(ValueError):
        RecencySuccessorBlend(short_tau_hours=0)
    with pytest.raises(ValueError):
        RecencySuccessorBlend(freshness_tau_hours=0)


def test_a_quiet_site_stretches_its_decay_times_with_its_traffic() -> None:
    """A transition 6 hours old against a fresher but single one: with the busy-site half-hour
    memory the fresh one wins; on a site with 4 clicks an hour (reference 40) the times stretch
    10x and the repeated older transition wins."""
    sessions = {
        **{f"old{i}": [(1, -360 - i), (2, -359 - i)] for i in range(3)},
        "new": [(1, -20), (3, -19)],
        **{f"other{i}": [(5, -60 * i), (6, -60 * i + 1)] for i in range(1, 20)},
    }
    busy, code, ids = fitted(sessions, prior_weight=0.0, knn_weight=0.0, freshness_weight=0.0)
    assert busy.time_scale == 1.0
    assert ids[busy.recommend(np.array([code[1]]), 1)[0, 0]] == 3
    quiet, code, ids = fitted(
        sessions, prior_weight=0.0, knn_weight=0.0, freshness_weight=0.0, reference_clicks_per_hour=40
    )
    clicks_last_day = 2 * len(sessions)
    assert quiet.time_scale == pytest.approx(40 / (clicks_last_day / 24))
    assert ids[quiet.recommend(np.array([code[1]]), 1)[0, 0]] == 2
    capped, *_ = fitted(sessions, reference_clicks_per_hour=40_000, max_time_scale=24)
    assert capped.time_scale == 24


def test_overrides_win_over_the_given_settings() -> None:
    blend = RecencySuccessorBlend(BlendSettings(prior_weight=2.0, knn_weight=0.5), prior_weight=3.0)
    assert (blend.prior_weight, blend.knn_weight, blend.short_tau_hours) == (3.0, 0.5, 0.5)


def test_the_scores_are_the_documented_formula_summed_over_every_pair_occurrence() -> None:
    """The blend's matrix, built from pairs summed by distinct pair, against the module's formula
    summed click by click, on a random log with repeats, three distances and fresh articles."""
    frame = random_clicks(T0, pd.Timedelta(hours=48), 11, clicks=4000, sessions=300, readers=50, articles=80)
    rng = np.random.default_rng(11)
    published = pd.Series(
        {str(a): T0 - pd.Timedelta(hours=float(rng.uniform(0, 72))) for a in range(0, 80, 3)}
    )
    train = training_clicks(click_log(frame, published), T0, 3)
    settings = BlendSettings(max_distance=3, knn_weight=0.5, prior_weight=0.0, reference_clicks_per_hour=1e-6)
    model = RecencySuccessorBlend(settings)
    model.fit(train, T0)

    n, end = train.n_articles, T0.value // 10**6
    expected = np.zeros((n, n))
    for d in range(1, 4):
        same = train.session[d:] == train.session[:-d]
        a, b = train.article[:-d][same], train.article[d:][same]
        age = (end - train.timestamp[d:][same]) / 3_600_000
        keep = a != b
        w = np.exp(-age / settings.short_tau_hours) + settings.long_weight * np.exp(
            -age / settings.long_tau_hours
        )
        w = w[keep] * settings.distance_decay ** (d - 1)
        np.add.at(expected, (a[keep], b[keep]), w)
        np.add.at(expected, (b[keep], a[keep]), settings.backward_weight * w)
    expected += settings.knn_weight * model.covisitation.toarray()
    fresh = np.exp(-np.clip((end - train.published_ms) / 3_600_000, 0, None) / settings.freshness_tau_hours)
    column = 1 + settings.freshness_weight * np.where(np.isnan(fresh), 0.0, fresh)
    np.testing.assert_allclose(model.scores.toarray(), expected * column[None, :], rtol=1e-12)

    # The co-visitation: implicit's K nearest by the cosine of the recency-weighted columns.
    visits = np.zeros((int(train.session.max()) + 1, n))
    np.add.at(
        visits,
        (train.session, train.article),
        np.exp(-(end - train.timestamp) / 3_600_000 / settings.knn_tau_hours),
    )
    unit = visits / np.maximum(np.linalg.norm(visits, axis=0), 1e-300)
    cosine = unit.T @ unit
    np.fill_diagonal(cosine, 0)
    covisitation = model.covisitation.toarray()
    for row in range(n):
        kept = np.flatnonzero(covisitation[row])
        np.testing.assert_allclose(covisitation[row, kept], cosine[row, kept], rtol=1e-5)
        assert len(kept) <= settings.knn_neighbours
        left_out = np.setdiff1d(np.flatnonzero(cosine[row] > 0), kept)
        if len(kept):  # the nearest ones: nothing left out is nearer than the farthest kept
            assert cosine[row, left_out].max(initial=0) <= covisitation[row, kept].min() * (1 + 1e-5)

"""Similar articles, the popularity fallback, and the checks before publishing."""

import numpy as np
import pandas as pd
import pytest

from article_rec_assets.recommenders.als import ArticleEmbeddings
from article_rec_assets.recommenders.lists import (
    RECOMMENDATION_COLUMNS,
    article_popularity,
    freshness,
    popularity_recommendations,
    recommendation_problems,
    similar_articles,
)
from article_rec_assets.recommenders.top_k import top_k_similar
from article_rec_assets.settings.sites import RecommendationSettings

AS_OF = pd.Timestamp("2024-05-29T12:00:00Z")
SETTINGS = RecommendationSettings(
    per_article=10,
    freshness_half_life_days=30,
    popularity_days=7,
    popularity_half_life_days=10,
    popularity_candidates=50,
)


def days_ago(days: float) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days)


def catalogue(
    published: dict[str, pd.Timestamp | None], excluded: dict[str, str] | None = None
) -> pd.DataFrame:
    excluded = excluded or {}
    ids = list(published)
    return pd.DataFrame(
        {
            "external_id": pd.array(ids, dtype="string"),
            "path": pd.array([f"/article/{i}/x/" for i in ids], dtype="string"),
            "title": pd.array(ids, dtype="string"),
            "published_at": pd.to_datetime(pd.Series([published[i] for i in ids], dtype=object), utc=True),
            "exclude_reason": pd.array([excluded.get(i) for i in ids], dtype="string"),
        }
    )


def embeddings(vectors: dict[str, tuple[float, ...]]) -> ArticleEmbeddings:
    return ArticleEmbeddings(
        article_ids=np.array(list(vectors), dtype=object),
        vectors=np.array(list(vectors.values()), dtype=np.float32),
        as_of=AS_OF,
    )


def recs_by_source(recs: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for row in recs.sort_values(["source_entity_id", "rank"]).itertuples():
        out.setdefault(row.source_entity_id, []).append((row.recommended_external_id, row.score))
    return out


# Unit vectors with known cosines: s.b = 0.8, s.c = 0.6, s.d = -1, b.c = 0.96, b.d = -0.8, c.d = -0.6.
# Rescaled to [0, 1] by (cos + 1) / 2: 0.9, 0.8, 0.0, 0.98, 0.1, 0.2.
FOUR = {"s": (1.0, 0.0), "b": (0.8, 0.6), "c": (0.6, 0.8), "d": (-1.0, 0.0)}
FRESH_FOUR = catalogue({name: AS_OF for name in FOUR})


def test_freshness():
    published = pd.Series([AS_OF, days_ago(30), days_ago(60), AS_OF + pd.Timedelta(days=2)])
    assert freshness(published, AS_OF, 30).tolist() == [1.0, 0.5, 0.25, 1.0]  # the future counts as new


def test_similar_articles_scores_by_hand():
    recs = similar_articles(embeddings(FOUR), FRESH_FOUR, SETTINGS)
    got = recs_by_source(recs)
    expected = {
        "s": [("b", 0.9), ("c", 0.8), ("d", 0.0)],
        "b": [("c", 0.98), ("s", 0.9), ("d", 0.1)],
        "c": [("b", 0.98), ("s", 0.8), ("d", 0.2)],
        "d": [("c", 0.2), ("b", 0.1), ("s", 0.0)],
    }
    assert got.keys() == expected.keys()
    for source, row in expected.items():
        assert [target for target, _ in got[source]] == [target for target, _ in row], source
        assert [score for _, score in got[source]] == pytest.approx([score for _, score in row], abs=1e-6)
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)
    assert set(recs["model_type"]) == {"article"}


def test_similar_articles_invariants():
    recs = similar_articles(embeddings(FOUR), FRESH_FOUR, SETTINGS)
    # Never the source itself; every score in [0, 1]; exactly k = min(10, 4 - 1) = 3 per source.
    assert not (recs["source_entity_id"] == recs["recommended_external_id"]).any()
    assert recs["score"].between(0, 1).all()
    assert recs.groupby("source_entity_id").size().to_dict() == {"b": 3, "c": 3, "d": 3, "s": 3}
    for _, group in recs.groupby("source_entity_id"):
        assert group["rank"].tolist() == [1, 2, 3]
        assert group["score"].is_monotonic_decreasing
    assert not recs.duplicated(["source_entity_id", "recommended_external_id"]).any()


def test_exactly_per_article_recommendations_when_there_are_more_articles():
    rng = np.random.default_rng(0)
    names = [f"x{i:02d}" for i in range(25)]
    vectors = {name: tuple(rng.normal(size=8)) for name in names}
    recs = similar_articles(
        embeddings(vectors), catalogue({n: days_ago(i) for i, n in enumerate(names)}), SETTINGS
    )
    assert len(recs) == 25 * 10
    assert set(recs.groupby("source_entity_id").size()) == {10}
    assert not (recs["source_entity_id"] == recs["recommended_external_id"]).any()
    assert recs["score"].between(0, 1).all()
    for _, group in recs.groupby("source_entity_id"):
        assert group["score"].is_monotonic_decreasing
        assert group["rank"].tolist() == list(range(1, 11))


def test_per_article_setting_limits_the_list():
    recs = similar_articles(embeddings(FOUR), FRESH_FOUR, SETTINGS.model_copy(update={"per_article": 2}))
    got = recs_by_source(recs)
    assert [t for t, _ in got["s"]] == ["b", "c"]
    assert [t for t, _ in got["d"]] == ["c", "b"]
    assert len(recs) == 8


def test_a_fresh_close_article_beats_a_stale_closer_one():
    vectors = {"src": (1.0, 0.0), "stale_twin": (1.0, 0.0), "fresh_near": (0.6, 0.8), "mid": (0.0, 1.0)}
    published = {"src": AS_OF, "stale_twin": days_ago(60), "fresh_near": AS_OF, "mid": days_ago(15)}
    recs = similar_articles(embeddings(vectors), catalogue(published), SETTINGS)
    got = recs_by_source(recs)
    # stale_twin: cosine 1 -> 1.0, x 0.5 ** (60 / 30) = 0.25.  fresh_near: cosine 0.6 -> 0.8, x 1.
    # mid: cosine 0 -> 0.5, x 0.5 ** (15 / 30) = 0.353553.
    assert [t for t, _ in got["src"]] == ["fresh_near", "mid", "stale_twin"]
    assert [s for _, s in got["src"]] == pytest.approx([0.8, 0.353553, 0.25], abs=1e-6)
    # The freshness is the recommended article's: from the stale one, the fresh twin scores 1.0.
    assert got["stale_twin"][0] == ("src", pytest.approx(1.0, abs=1e-6))


def test_only_recommendable_catalogue_articles_take_part():
    vectors = {**FOUR, "excluded": (1.0, 0.0), "unknown": (1.0, 0.0)}
    cat = catalogue({**{n: AS_OF for n in FOUR}, "excluded": AS_OF}, excluded={"excluded": "too_old"})
    recs = similar_articles(embeddings(vectors), cat, SETTINGS)
    assert set(recs["source_entity_id"]) == {"s", "b", "c", "d"}
    assert set(recs["recommended_external_id"]) == {"s", "b", "c", "d"}
    assert len(recs) == 12


def test_a_single_article_gives_no_recommendations():
    recs = similar_articles(
        embeddings({"s": (1.0, 0.0), "gone": (0.0, 1.0)}), catalogue({"s": AS_OF}), SETTINGS
    )
    assert recs.empty
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)


def test_a_zero_vector_is_neutral_not_nan():
    vectors = {"s": (1.0, 0.0), "z": (0.0, 0.0), "b": (0.8, 0.6)}
    recs = similar_articles(embeddings(vectors), catalogue({n: AS_OF for n in vectors}), SETTINGS)
    assert recs["score"].notna().all()
    got = recs_by_source(recs)
    # A zero vector has cosine 0 with everything: (0 + 1) / 2 = 0.5 both ways.
    assert sorted(got["z"]) == [("b", 0.5), ("s", 0.5)]
    assert got["s"] == [("b", pytest.approx(0.9, abs=1e-6)), ("z", 0.5)]


# --- popularity ------------------------------------------------------------------------------


def interactions(rows: list[tuple[str, str, float, pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["reader_id", "external_id", "engaged_seconds", "first_seen", "last_seen"]
    )
    return frame.astype({"reader_id": "string", "external_id": "string"})


def test_article_popularity_window_and_sums():
    recs = article_popularity(
        interactions(
            [
                ("r1", "a1", 100, days_ago(1), days_ago(1)),
                ("r2", "a1", 50, days_ago(2), days_ago(2)),
                ("r1", "a1", 30, days_ago(3), days_ago(3)),  # same reader again
                ("r3", "a2", 500, days_ago(8.5), days_ago(8)),  # ended before the 7 days: out
                ("r1", "a2", 20, days_ago(7.1), days_ago(7)),  # ends exactly 7 days ago: in
                ("r2", "a3", 80, AS_OF + pd.Timedelta(hours=1), AS_OF + pd.Timedelta(hours=2)),  # after: out
                ("r4", "a0", 20, days_ago(1), days_ago(1)),  # ties a2: ordered by id
            ]
        ),
        AS_OF,
        7,
    )
    assert recs["external_id"].tolist() == ["a1", "a0", "a2"]
    assert recs["engaged_seconds"].tolist() == [180.0, 20.0, 20.0]
    assert recs["readers"].tolist() == [2, 1, 1]


def popularity(rows: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "external_id": pd.array(list(rows), dtype="string"),
            "engaged_seconds": list(rows.values()),
            "readers": [3] * len(rows),
        }
    )


def test_popularity_decay_and_normalisation():
    # A: 1000 s, 10 days old -> 500.  B: 600 s, new -> 600.  C: 400 s, 20 days old -> 100.
    cat = catalogue({"A": days_ago(10), "B": AS_OF, "C": days_ago(20)})
    recs = popularity_recommendations(popularity({"A": 1000, "B": 600, "C": 400}), cat, AS_OF, SETTINGS)
    assert recs["recommended_external_id"].tolist() == ["B", "A", "C"]
    assert recs["score"].tolist() == [1.0, round(500 / 600, 6), round(100 / 600, 6)]
    assert recs["score"].max() == 1.0
    assert recs["rank"].tolist() == [1, 2, 3]
    assert set(recs["source_entity_id"]) == {"default"}
    assert set(recs["model_type"]) == {"popularity"}
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)


def test_popularity_candidates_are_the_most_read_before_decay():
    # Only the 2 most-read (A 1000 s, B 600 s) are candidates; C would score higher after decay.
    cat = catalogue({"A": days_ago(10), "B": days_ago(10), "C": AS_OF})
    settings = SETTINGS.model_copy(update={"popularity_candidates": 2})
    recs = popularity_recommendations(popularity({"A": 1000, "B": 600, "C": 550}), cat, AS_OF, settings)
    assert recs["recommended_external_id"].tolist() == ["A", "B"]
    assert recs["score"].tolist() == [1.0, 0.6]


def test_popularity_leaves_out_articles_that_cannot_be_recommended():
    cat = catalogue({"A": AS_OF, "B": AS_OF, "C": None}, excluded={"B": "too_old", "C": "no_publish_date"})
    recs = popularity_recommendations(
        popularity({"A": 100, "B": 900, "C": 800, "Z": 700}), cat, AS_OF, SETTINGS
    )
    assert recs["recommended_external_id"].tolist() == ["A"]
    assert recs["score"].tolist() == [1.0]


def test_popularity_with_nothing_read():
    recs = popularity_recommendations(popularity({}), catalogue({"A": AS_OF}), AS_OF, SETTINGS)
    assert recs.empty
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)


# --- problems --------------------------------------------------------------------------------


def recs_frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["model_type", "source_entity_id", "recommended_external_id", "score"])
    frame["rank"] = 1
    return frame.astype(
        {"model_type": "string", "source_entity_id": "string", "recommended_external_id": "string"}
    )


PROBLEM_CATALOGUE = catalogue({"a": AS_OF, "b": AS_OF, "old": AS_OF}, excluded={"old": "too_old"})
GOOD = [("article", "a", "b", 0.9), ("article", "b", "a", 0.9), ("popularity", "default", "a", 1.0)]


def test_good_recommendations_have_no_problems():
    assert recommendation_problems(recs_frame(GOOD), PROBLEM_CATALOGUE) == []
    # The real functions' output passes too.
    cat = catalogue({n: AS_OF for n in FOUR})
    real = pd.concat(
        [
            similar_articles(embeddings(FOUR), cat, SETTINGS),
            popularity_recommendations(popularity({"s": 100, "b": 50}), cat, AS_OF, SETTINGS),
        ],
        ignore_index=True,
    )
    assert recommendation_problems(real, cat) == []


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (GOOD[2:], "no article recommendations"),
        (GOOD[:2], "no popularity recommendations"),
        ([*GOOD, ("article", "a", "a", 0.5)], "an article recommends itself"),
        (
            [*GOOD, ("article", "a", "old", 0.5)],
            "1 recommended articles are not recommendable catalogue articles",
        ),
        (
            [*GOOD, ("article", "a", "ghost", 0.5), ("article", "b", "ghost", 0.5)],
            "2 recommended articles are not recommendable catalogue articles",
        ),
        ([*GOOD, ("article", "a", "b", 0.8)], "duplicate (source, recommended) pairs"),
        ([*GOOD[:2], ("popularity", "default", "a", 1.5)], "1 scores outside [0, 1]"),
        (
            [("article", "a", "b", -0.1), GOOD[1], ("popularity", "default", "a", 1.000001)],
            "2 scores outside [0, 1]",
        ),
    ],
)
def test_each_problem_is_detected(rows, problem):
    assert recommendation_problems(recs_frame(rows), PROBLEM_CATALOGUE) == [problem]


def test_no_recommendations_at_all():
    assert recommendation_problems(recs_frame([]), PROBLEM_CATALOGUE) == [
        "no article recommendations",
        "no popularity recommendations",
    ]


@pytest.mark.parametrize(("n", "k"), [(11, 10), (65, 10), (200, 10), (1000, 5), (3000, 20)])
def test_top_k_similar_equals_a_full_sort(n: int, k: int) -> None:
    """The chunk-maxima shortcut finds exactly what sorting every row finds."""
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    weights = rng.uniform(0.1, 1.0, size=n).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for w in (None, weights):
        expected = (np.clip(unit @ unit.T, -1, 1) + 1) / 2 * (1 if w is None else w[None, :])
        np.fill_diagonal(expected, -1)
        expected_idx = np.argsort(-expected, axis=1, kind="stable")[:, :k]
        indices, scores = top_k_similar(vectors, k, weights=w)
        assert indices.shape == (n, k)
        np.testing.assert_array_equal(indices, expected_idx)
        np.testing.assert_allclose(scores, np.take_along_axis(expected, expected_idx, axis=1), atol=1e-5)
        assert (np.diff(scores, axis=1) <= 1e-7).all()

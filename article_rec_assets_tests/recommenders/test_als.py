"""The offline evaluation: folds, pairs, baselines, the popularity fill and the metrics, on hand-made logs."""

import warnings

import implicit.utils
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from threadpoolctl import threadpool_info, threadpool_limits

from article_rec_assets.recommenders.als import (
    ALSEmbedder,
    EmbeddingRecommender,
    NotEnoughData,
    train_article_embeddings,
)
from article_rec_assets.recommenders.click_log import TrainingClicks, training_clicks
from article_rec_assets.recommenders.interaction_matrix import InteractionMatrix
from article_rec_assets.settings.sites import ModelSettings
from article_rec_assets_tests.recommenders.clicks import T0, at, codes, log_of, recommend

# ------------------------------------------------------------------------------------ embeddings


def test_embedding_adapter_ranks_by_cosine_and_fills_unknown_sources(hand):
    log, train = hand
    vectors = {1: (1, 0), 2: (0.9, 0.1), 3: (0, 1), 7: (0.8, 0.6), 8: (1, 0)}  # 8 is not in the window

    def embed(window: TrainingClicks):
        return codes(log, list(vectors)), np.array(list(vectors.values()), dtype=np.float32)

    model = EmbeddingRecommender(embed, name="fake")
    assert recommend(model, log, train, [1, 3, 4], k=3) == [[2, 7, 3], [7, 2, 1], []]


def test_project_als_through_the_adapter():
    # readers 0-5 read 1, 2, 3; readers 6-11 read 4, 5, 6
    sessions = {
        (f"r{r}", f"s{r}"): [
            (a, at(-300 + 10 * r + i)) for i, a in enumerate((1, 2, 3) if r < 6 else (4, 5, 6))
        ]
        for r in range(12)
    }
    log = log_of(sessions)
    train = training_clicks(log, T0, train_days=1)
    embedder = ALSEmbedder("reader", settings=ModelSettings(factors=4, iterations=20, random_state=42))
    model = EmbeddingRecommender(embedder, name="als")
    got = recommend(model, log, train, [1, 5], k=2)
    assert sorted(got[0]) == [2, 3] and sorted(got[1]) == [4, 6]
    assert embedder.last_stats["readers"] == 12 and embedder.last_stats["articles"] == 6


AS_OF = pd.Timestamp("2024-05-29T12:00:00Z")


SETTINGS = ModelSettings(factors=4, iterations=20, regularization=0.05, alpha=1.0, random_state=42)


def two_clusters() -> InteractionMatrix:
    """Readers 0-5 read articles 0-2 only, readers 6-11 read articles 3-5 only."""
    dense = np.zeros((12, 6), dtype=np.float32)
    dense[:6, :3] = 120
    dense[6:, 3:] = 120
    # Some variation so the two clusters are not perfectly symmetric.
    dense[0, 0] = 300
    dense[7, 4] = 45
    return InteractionMatrix(
        matrix=sparse.csr_matrix(dense),
        reader_ids=np.array([f"r{i}" for i in range(12)], dtype=object),
        article_ids=np.array([f"a{j}" for j in range(6)], dtype=object),
        as_of=AS_OF,
    )


def cosine(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def openblas_warnings(records) -> list[str]:
    return [str(w.message) for w in records if "OpenBLAS" in str(w.message)]


def test_als_puts_co_read_articles_together():
    data = two_clusters()
    embeddings = train_article_embeddings(data, SETTINGS)

    assert embeddings.vectors.shape == (6, SETTINGS.factors)
    assert embeddings.vectors.dtype == np.float32
    assert np.isfinite(embeddings.vectors).all()
    assert embeddings.article_ids.tolist() == ["a0", "a1", "a2", "a3", "a4", "a5"]
    assert embeddings.as_of == AS_OF
    assert embeddings.stats["readers"] == 12
    assert embeddings.stats["articles"] == 6
    assert embeddings.stats["factors"] == 4
    assert embeddings.stats["iterations"] == 20

    similarity = cosine(embeddings.vectors)
    cluster = np.array([0, 0, 0, 1, 1, 1])
    same = cluster[:, None] == cluster[None, :]
    off_diagonal = ~np.eye(6, dtype=bool)
    # Every within-cluster pair is closer than every cross-cluster pair.
    assert similarity[same & off_diagonal].min() > similarity[~same].max()
    assert similarity[same & off_diagonal].min() > 0.5


def test_training_is_reproducible_with_the_same_random_state():
    first = train_article_embeddings(two_clusters(), SETTINGS).vectors
    second = train_article_embeddings(two_clusters(), SETTINGS).vectors
    np.testing.assert_allclose(first, second, rtol=1e-4, atol=1e-5)


def test_no_openblas_thread_warning(monkeypatch):
    # implicit warns only once per process; make it check again.
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        train_article_embeddings(two_clusters(), SETTINGS)
    assert openblas_warnings(records) == []
    assert not [w for w in records if issubclass(w.category, RuntimeWarning)]


def test_the_openblas_warning_check_would_see_the_warning(monkeypatch):
    """Control for the test above: outside the thread limit, implicit does warn here."""
    from implicit.als import AlternatingLeastSquares

    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with threadpool_limits(2, "blas"):
        multi_threaded = any(
            api["internal_api"] == "openblas" and api["num_threads"] > 1 for api in threadpool_info()
        )
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            AlternatingLeastSquares(factors=2)
    # (On a machine where OpenBLAS cannot run 2 threads there is nothing to warn about.)
    assert bool(openblas_warnings(records)) == multi_threaded


def test_blas_thread_limit_is_restored_after_training():
    before = [(api["filepath"], api["num_threads"]) for api in threadpool_info() if api["user_api"] == "blas"]
    train_article_embeddings(two_clusters(), SETTINGS)
    after = [(api["filepath"], api["num_threads"]) for api in threadpool_info() if api["user_api"] == "blas"]
    assert after == before


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (0, 0)])
def test_not_enough_data(shape):
    readers, articles = shape
    data = InteractionMatrix(
        matrix=sparse.csr_matrix(np.full(shape, 100, dtype=np.float32)),
        reader_ids=np.array([f"r{i}" for i in range(readers)], dtype=object),
        article_ids=np.array([f"a{j}" for j in range(articles)], dtype=object),
        as_of=AS_OF,
    )
    with pytest.raises(NotEnoughData, match=rf"{readers} readers x {articles} articles"):
        train_article_embeddings(data, SETTINGS)
    assert issubclass(NotEnoughData, ValueError)

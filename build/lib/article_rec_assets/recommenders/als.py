"""ALS: article embeddings from implicit-feedback ALS over the interaction matrix (the pipeline's
`trained_model`), and the adapter that ranks by their cosine as a recommender of the replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from scipy import sparse
from threadpoolctl import threadpool_limits

from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.click_log import MS_PER_DAY, NO_ARTICLE, TrainingClicks, epoch_ms_of
from article_rec_assets.recommenders.interaction_matrix import InteractionMatrix, build_interaction_matrix
from article_rec_assets.recommenders.top_k import top_k_dense
from article_rec_assets.settings.sites import ModelSettings

# Reading seconds become confidence on a log scale: a 10-minute read is worth more than a
# 30-second one, but not twenty times more. Page views count as one minute each.
CONFIDENCE_SCALE = {"dwell_seconds": 60.0, "page_views": 1.0}


@dataclass
class ArticleEmbeddings:
    article_ids: np.ndarray
    vectors: np.ndarray  # one row per article, float32
    as_of: pd.Timestamp
    stats: dict[str, float] = field(default_factory=dict)


class NotEnoughData(ValueError):
    """The matrix is too small to train on."""


def train_article_embeddings(data: InteractionMatrix, settings: ModelSettings) -> ArticleEmbeddings:
    readers, articles = data.shape
    if readers < 2 or articles < 2:
        raise NotEnoughData(
            f"interaction matrix is {readers} readers x {articles} articles after the site's "
            "filters; at least 2 x 2 is needed to train"
        )
    confidence = data.matrix.copy()
    confidence.data = np.log1p(confidence.data / CONFIDENCE_SCALE[data.signal]).astype(np.float32)
    started = time.perf_counter()
    # OpenBLAS threads fight implicit's own; one BLAS thread is what implicit asks for (it checks
    # when the model is built, so both steps run under the limit).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=settings.alpha,
            iterations=settings.iterations,
            random_state=settings.random_state,
        )
        model.fit(confidence.tocsr(), show_progress=False)
    fit_seconds = time.perf_counter() - started
    vectors = np.asarray(model.item_factors, dtype=np.float32)
    return ArticleEmbeddings(
        article_ids=data.article_ids,
        vectors=vectors,
        as_of=data.as_of,
        stats={
            "fit_seconds": round(fit_seconds, 3),
            "factors": settings.factors,
            "iterations": settings.iterations,
            "readers": readers,
            "articles": articles,
        },
    )


Embedder = Callable[[TrainingClicks], tuple[np.ndarray, np.ndarray]]


class EmbeddingRecommender(Recommender):
    """Any model that gives article vectors: `embed(train)` returns (article codes, vectors); the
    list for a is the other catalogue articles by cosine to a's vector, ties by `train.tie_rank`.
    With `freshness_half_life_days` the score is the project's own (cosine + 1) / 2 x
    0.5 ** (age in days / half-life), age from publish time to t0 (articles of unknown publish time
    count as fresh). Sources without a vector get an empty list (all fill).
    """

    def __init__(
        self, embed: Embedder, name: str = "embeddings", freshness_half_life_days: float | None = None
    ):
        self.embed = embed
        self.name = name
        self.freshness_half_life_days = freshness_half_life_days
        self.batch_rows = 1024

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        codes, vectors = self.embed(train)
        codes = np.asarray(codes, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(codes) != len(vectors):
            raise ValueError("embed() returned different numbers of codes and vectors")
        keep = train.in_catalogue()[codes]
        codes, vectors = codes[keep], vectors[keep]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.codes = codes
        self.unit = vectors / np.where(norms == 0, 1, norms)
        self.row_of = np.full(train.n_articles, -1, dtype=np.int64)
        self.row_of[codes] = np.arange(len(codes))
        self.tiebreak = train.tie_rank[codes]
        self.fresh = None
        if self.freshness_half_life_days is not None:
            age_days = np.clip((epoch_ms_of(t0) - train.published_ms[codes]) / MS_PER_DAY, 0, None)
            fresh = np.power(0.5, age_days / self.freshness_half_life_days)
            self.fresh = np.where(np.isnan(fresh), 1.0, fresh).astype(np.float32)

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids)
        out = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
        rows = self.row_of[source_ids]
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), self.batch_rows):
            batch = known[start : start + self.batch_rows]
            scores = self.unit[rows[batch]] @ self.unit.T
            if self.fresh is not None:
                scores = (np.clip(scores, -1, 1) + 1) / 2 * self.fresh[None, :]
            scores[np.arange(len(batch)), rows[batch]] = -np.inf
            top = top_k_dense(scores, k, self.tiebreak)
            out[batch] = np.where(top >= 0, self.codes[np.maximum(top, 0)], NO_ARTICLE)
        return out


class ALSEmbedder:
    """The project's model: implicit ALS (`train_article_embeddings` above, which holds
    BLAS to one thread around building and fitting the model) on the window's clicks.

    With `filters` (a `sites.TrainingSettings`), the matrix is the project's own:
    `recommenders.interaction_matrix.build_interaction_matrix` with its dwell bounds, minimum readers per
    article, minimum articles and seconds per reader and daily decay. Without, it is a plain readers
    (or sessions, `rows="session"`) x articles matrix of every window click.

    Click logs have no reading time: the matrix counts page views (`signal: page_views`), so the
    project's confidence is log1p(views).
    """

    def __init__(self, rows: str = "reader", settings=None, filters=None):
        if rows not in ("reader", "session"):
            raise ValueError("rows must be 'reader' or 'session'")
        if filters is not None and rows != "reader":
            raise ValueError("the project's filters apply to readers x articles")
        self.rows = rows
        self.settings = settings
        self.filters = filters
        self.last_stats: dict = {}

    def __call__(self, train: TrainingClicks) -> tuple[np.ndarray, np.ndarray]:

        settings = self.settings or ModelSettings()
        data = self._project_matrix(train) if self.filters is not None else self._plain_matrix(train)
        try:
            embeddings = train_article_embeddings(data, settings)
        except NotEnoughData:
            return np.empty(0, dtype=np.int64), np.empty((0, settings.factors), dtype=np.float32)
        self.last_stats = {**data.stats, **embeddings.stats}
        return np.asarray(embeddings.article_ids, dtype=np.int64), embeddings.vectors

    def _plain_matrix(self, train: TrainingClicks):

        row_codes, row_ids = pd.factorize(train.reader if self.rows == "reader" else train.session)
        article_codes, article_ids = pd.factorize(train.article)
        matrix = sparse.csr_matrix(
            (np.ones(len(row_codes), dtype=np.float32), (row_codes, article_codes)),
            shape=(len(row_ids), len(article_ids)),
        )
        matrix.sum_duplicates()
        return InteractionMatrix(
            matrix=matrix,
            reader_ids=np.asarray(row_ids),
            article_ids=np.asarray(article_ids),
            as_of=train.t0,
            stats={"readers": len(row_ids), "articles": len(article_ids), "nonzeros": int(matrix.nnz)},
            signal="page_views",
        )

    def _project_matrix(self, train: TrainingClicks):

        interactions = pd.DataFrame(
            {
                "reader_id": train.reader,
                "external_id": train.article,
                "day": pd.to_datetime(train.timestamp, unit="ms", utc=True).floor("D"),
                "page_views": 1,
                "engaged_seconds": 0.0,
            }
        )
        catalogue = pd.DataFrame(
            {"external_id": train.catalogue, "exclude_reason": pd.array([pd.NA] * len(train.catalogue))}
        )
        filters = self.filters.model_copy(update={"signal": "page_views"})
        return build_interaction_matrix(interactions, catalogue, train.t0, filters)

"""The trained model: article embeddings from implicit-feedback ALS over the interaction matrix."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from article_rec_assets.logic.interaction_matrix import InteractionMatrix
from article_rec_assets.sites import ModelSettings

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

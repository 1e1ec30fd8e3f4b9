"""The interaction matrix: readers x articles over the training window, filtered and decayed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.logic.catalogue import recommendable
from article_rec_assets.sites import TrainingSettings


@dataclass
class InteractionMatrix:
    """A sparse reader x article matrix with the ids of its rows and columns.

    Values are reading seconds, each day's reading decayed by its age at `as_of`.
    """

    matrix: sparse.csr_matrix
    reader_ids: np.ndarray
    article_ids: np.ndarray
    as_of: pd.Timestamp
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape


def build_interaction_matrix(
    interactions: pd.DataFrame,
    catalogue: pd.DataFrame,
    as_of: pd.Timestamp,
    settings: TrainingSettings,
) -> InteractionMatrix:
    """Apply the site's rules (CONTRACT.md section 3) and build the matrix.

    Order: training window -> daily reading time per (reader, article) within [min, max] seconds
    -> recommendable catalogue articles -> articles with more than N readers -> readers with more
    than N articles and more than N seconds.
    """
    stats: dict[str, int] = {"interactions_in": len(interactions)}
    start = as_of - pd.Timedelta(days=settings.training_days)
    recent = interactions[(interactions["day"] >= start.floor("D")) & (interactions["day"] < as_of)]
    daily = recent.groupby(["reader_id", "external_id", "day"], observed=True, as_index=False)[
        "engaged_seconds"
    ].sum()
    stats["reader_article_days"] = len(daily)
    daily = daily[daily["engaged_seconds"].between(settings.min_dwell_seconds, settings.max_dwell_seconds)]
    stats["within_dwell_bounds"] = len(daily)
    daily = daily[daily["external_id"].isin(recommendable(catalogue)["external_id"])]
    stats["on_recommendable_articles"] = len(daily)

    readers_per_article = daily.groupby("external_id", observed=True)["reader_id"].nunique()
    keep_articles = readers_per_article[readers_per_article > settings.min_readers_per_article].index
    daily = daily[daily["external_id"].isin(keep_articles)]
    per_reader = daily.groupby("reader_id", observed=True).agg(
        articles=("external_id", "nunique"), seconds=("engaged_seconds", "sum")
    )
    keep_readers = per_reader[
        (per_reader["articles"] > settings.min_articles_per_reader)
        & (per_reader["seconds"] > settings.min_seconds_per_reader)
    ].index
    daily = daily[daily["reader_id"].isin(keep_readers)]

    age_days = (as_of - (daily["day"] + pd.Timedelta(hours=12))).dt.total_seconds() / 86400
    weight = daily["engaged_seconds"] * np.power(0.5, age_days.clip(lower=0) / settings.decay_half_life_days)
    reader_codes, reader_ids = pd.factorize(daily["reader_id"], sort=True)
    article_codes, article_ids = pd.factorize(daily["external_id"], sort=True)
    matrix = sparse.csr_matrix(
        (weight.to_numpy(dtype=np.float32), (reader_codes, article_codes)),
        shape=(len(reader_ids), len(article_ids)),
    )
    matrix.sum_duplicates()
    stats.update(readers=len(reader_ids), articles=len(article_ids), nonzeros=int(matrix.nnz))
    return InteractionMatrix(
        matrix=matrix,
        reader_ids=np.asarray(reader_ids, dtype=object),
        article_ids=np.asarray(article_ids, dtype=object),
        as_of=as_of,
        stats=stats,
    )

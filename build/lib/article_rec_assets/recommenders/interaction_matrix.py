"""The interaction matrix: readers x articles over the training window, filtered and decayed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.catalogue.snapshot import recommendable
from article_rec_assets.settings.sites import TrainingSettings


@dataclass
class InteractionMatrix:
    """A sparse reader x article matrix with the ids of its rows and columns.

    Values are reading seconds (or page views, per `signal`), each day's reading decayed by its
    age at `as_of`.
    """

    matrix: sparse.csr_matrix
    reader_ids: np.ndarray
    article_ids: np.ndarray
    as_of: pd.Timestamp
    stats: dict[str, int] = field(default_factory=dict)
    signal: str = "dwell_seconds"

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
    than N articles and more than N seconds. With `signal: page_views` the value is the day's
    page views and the two seconds rules do not apply (a source without dwell time).
    """
    stats: dict[str, int] = {"interactions_in": len(interactions)}
    start = as_of - pd.Timedelta(days=settings.training_days)
    recent = interactions[(interactions["day"] >= start.floor("D")) & (interactions["day"] < as_of)]
    by_views = settings.signal == "page_views"
    daily = recent.groupby(["reader_id", "external_id", "day"], observed=True, as_index=False)[
        "page_views" if by_views else "engaged_seconds"
    ].sum()
    daily = daily.rename(columns={"page_views": "value", "engaged_seconds": "value"})
    stats["reader_article_days"] = len(daily)
    if by_views:
        daily = daily[daily["value"] > 0]
    else:
        daily = daily[daily["value"].between(settings.min_dwell_seconds, settings.max_dwell_seconds)]
    stats["within_dwell_bounds"] = len(daily)
    daily = daily[daily["external_id"].isin(recommendable(catalogue)["external_id"])]
    stats["on_recommendable_articles"] = len(daily)

    readers_per_article = daily.groupby("external_id", observed=True)["reader_id"].nunique()
    keep_articles = readers_per_article[readers_per_article > settings.min_readers_per_article].index
    daily = daily[daily["external_id"].isin(keep_articles)]
    per_reader = daily.groupby("reader_id", observed=True).agg(
        articles=("external_id", "nunique"), value=("value", "sum")
    )
    enough = per_reader["articles"] > settings.min_articles_per_reader
    if not by_views:
        enough &= per_reader["value"] > settings.min_seconds_per_reader
    keep_readers = per_reader[enough].index
    daily = daily[daily["reader_id"].isin(keep_readers)]

    age_days = (as_of - (daily["day"] + pd.Timedelta(hours=12))).dt.total_seconds() / 86400
    weight = daily["value"] * np.power(0.5, age_days.clip(lower=0) / settings.decay_half_life_days)
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
        signal=settings.signal,
    )

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
    day = interactions["day"]
    recent = ((day >= start.floor("D")) & (day < as_of)).to_numpy()
    by_views = settings.signal == "page_views"
    # The rules on integer codes (in id order, so the id maps come out sorted), with one sort:
    # 8.7M rows of a large site in a few seconds, where groupbys on three text keys took 15 s.
    # Only the columns' arrays are filtered (no copy of the frame), temporaries let go early:
    # a large site's step holds a few arrays of its rows at a time.
    reader_codes, reader_ids = _codes(interactions["reader_id"])
    article_codes, article_ids = _codes(interactions["external_id"])
    day_codes, days = pd.factorize(_epoch_ns(day), sort=True)
    value = interactions["page_views" if by_views else "engaged_seconds"].to_numpy(dtype=np.float64)
    known = recent & (reader_codes >= 0) & (article_codes >= 0) & (day_codes >= 0)  # no id: no cell
    del recent, day
    reader_codes, article_codes, day_codes = reader_codes[known], article_codes[known], day_codes[known]
    value = np.nan_to_num(value[known])  # a missing value adds nothing, as in a sum
    del known
    n_readers, n_articles, n_days = max(len(reader_ids), 1), max(len(article_ids), 1), max(len(days), 1)
    key = (reader_codes.astype(np.int64) * n_articles + article_codes) * n_days + day_codes
    del reader_codes, article_codes, day_codes
    order = np.argsort(key, kind="stable")
    key = key[order]
    value = value[order]
    del order
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    daily_key = key[first]  # one per (reader, article, day), sorted by reader, article, day
    del key
    daily_value = np.add.reduceat(value, first) if len(first) else np.zeros(0)
    del value, first
    stats["reader_article_days"] = len(daily_key)
    if by_views:
        keep = daily_value > 0
    else:
        keep = (daily_value >= settings.min_dwell_seconds) & (daily_value <= settings.max_dwell_seconds)
    stats["within_dwell_bounds"] = int(keep.sum())
    daily_key, daily_value = daily_key[keep], daily_value[keep]
    allowed = pd.Index(article_ids).isin(recommendable(catalogue)["external_id"])
    keep = allowed[(daily_key // n_days) % n_articles]
    stats["on_recommendable_articles"] = int(keep.sum())
    daily_key, daily_value = daily_key[keep], daily_value[keep]

    # Each (reader, article) once, however many days: runs of the sorted keys.
    pair = daily_key // n_days
    pairs = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    readers_per_article = np.bincount(pairs % n_articles, minlength=n_articles)
    keep = readers_per_article[pair % n_articles] > settings.min_readers_per_article
    daily_key, daily_value, pair = daily_key[keep], daily_value[keep], pair[keep]
    pairs = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    articles_per_reader = np.bincount(pairs // n_articles, minlength=n_readers)
    value_per_reader = np.bincount(pair // n_articles, weights=daily_value, minlength=n_readers)
    enough = articles_per_reader > settings.min_articles_per_reader
    if not by_views:
        enough &= value_per_reader > settings.min_seconds_per_reader
    keep = enough[pair // n_articles]
    daily_key, daily_value, pair = daily_key[keep], daily_value[keep], pair[keep]
    daily_reader, daily_article = pair // n_articles, pair % n_articles

    day_start = pd.to_datetime(days[daily_key % n_days], utc=True)
    age_days = (as_of - (day_start + pd.Timedelta(hours=12))).total_seconds().to_numpy() / 86400
    weight = daily_value * np.power(0.5, np.clip(age_days, 0, None) / settings.decay_half_life_days)
    # Rows and columns: the readers and articles left, in id order.
    reader_rows, kept_readers = _compact(daily_reader, n_readers)
    article_cols, kept_articles = _compact(daily_article, n_articles)
    reader_ids = np.asarray(reader_ids, dtype=object)[kept_readers]
    article_ids = np.asarray(article_ids, dtype=object)[kept_articles]
    matrix = sparse.csr_matrix(
        (weight.astype(np.float32), (reader_rows, article_cols)),
        shape=(len(reader_ids), len(article_ids)),
    )
    matrix.sum_duplicates()
    stats.update(readers=len(reader_ids), articles=len(article_ids), nonzeros=int(matrix.nnz))
    return InteractionMatrix(
        matrix=matrix,
        reader_ids=reader_ids,
        article_ids=article_ids,
        as_of=as_of,
        stats=stats,
        signal=settings.signal,
    )


def _epoch_ns(day: pd.Series) -> np.ndarray:
    """The days as int64 nanoseconds, without a copy where they are stored so."""
    values = day.array
    if isinstance(values, pd.arrays.DatetimeArray) and values.unit == "ns":
        return values.asi8
    return day.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of an id column and the ids they stand for, in id order (-1: missing).
    Categories sorted by the trailing load are used as they are (ids of rows outside the
    window among them: `_compact` drops the ids no cell is left for)."""
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.is_monotonic_increasing:
        return column.cat.codes.to_numpy(), column.cat.categories
    return pd.factorize(column, sort=True)


def _compact(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered 0.. over those present (in order), and the old code of each new one."""
    present = np.zeros(size, dtype=bool)
    present[codes] = True
    renumber = np.cumsum(present) - 1
    return renumber[codes], np.flatnonzero(present)

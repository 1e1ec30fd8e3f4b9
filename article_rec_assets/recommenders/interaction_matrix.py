"""The interaction matrix: readers x articles over the training window, filtered and decayed."""

from __future__ import annotations

import math
from collections.abc import Callable
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


# Rows of the interactions built into the matrix at a time: the build holds a few arrays of a
# block's rows (keys, the sort's order, values), not of all 28 days' (a hundred million rows and
# more for the largest sites).
ROWS_PER_BLOCK = 2_000_000


def build_interaction_matrix(
    interactions: pd.DataFrame,
    catalogue: pd.DataFrame,
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    rows_per_block: int = ROWS_PER_BLOCK,
) -> InteractionMatrix:
    """Apply the site's rules (docs/contract.md, section 5) and build the matrix.

    Order: training window -> daily reading time per (reader, article) within [min, max] seconds
    -> recommendable catalogue articles -> articles with more than N readers -> readers with more
    than N articles and more than N seconds. With `signal: page_views` the value is the day's
    page views and the two seconds rules do not apply (a source without dwell time).

    The rules run on integer codes (in id order, so the id maps come out sorted), in blocks of
    readers: every rule but the readers-per-article one looks at one reader's rows, so a first
    pass over the blocks counts each article's readers and a second builds each block's rows of
    the matrix. The result does not depend on the block size.
    """
    stats: dict[str, int] = {
        "interactions_in": len(interactions),
        "reader_article_days": 0,
        "within_dwell_bounds": 0,
        "on_recommendable_articles": 0,
    }
    reader_codes, reader_ids = _codes(interactions["reader_id"])
    article_codes, article_ids = _codes(interactions["external_id"])
    n_readers, n_articles = max(len(reader_ids), 1), max(len(article_ids), 1)
    epoch = _epoch_ns(interactions["day"])
    by_views = settings.signal == "page_views"
    value = interactions["page_views" if by_views else "engaged_seconds"].to_numpy(dtype=np.float64)
    start = (as_of - pd.Timedelta(days=settings.training_days)).floor("D")
    # In the window (NaT is below it) and with both ids: no id, no cell.
    usable = (epoch >= start.value) & (epoch < as_of.value) & (reader_codes >= 0) & (article_codes >= 0)
    allowed = pd.Index(article_ids).isin(recommendable(catalogue)["external_id"])
    # Blocks of readers of about `rows_per_block` rows each; a block's rows in their order.
    readers_per_block = max(1, math.ceil(n_readers * max(rows_per_block, 1) / max(len(interactions), 1)))
    n_blocks = math.ceil(n_readers / readers_per_block)
    block_rows = _rows_by_block(reader_codes, usable, readers_per_block, n_blocks)
    reader_ranges = [
        (i * readers_per_block, min((i + 1) * readers_per_block, n_readers)) for i in range(n_blocks)
    ]

    def block_cells(i: int, count: bool) -> _DailyCells:
        rows = block_rows(i)
        cells = _daily_cells(reader_codes[rows], article_codes[rows], epoch[rows], value[rows], n_articles)
        if count:
            stats["reader_article_days"] += len(cells.pair)
        if by_views:
            keep = cells.value > 0
        else:
            keep = (cells.value >= settings.min_dwell_seconds) & (cells.value <= settings.max_dwell_seconds)
        cells = cells.take(keep)
        if count:
            stats["within_dwell_bounds"] += len(cells.pair)
        cells = cells.take(allowed[cells.pair % n_articles])
        if count:
            stats["on_recommendable_articles"] += len(cells.pair)
        return cells

    # Pass 1: each (reader, article) once, however many days (runs of the sorted pairs). With
    # one block its cells are kept for pass 2; with more they are made again (a second sort).
    readers_per_article = np.zeros(n_articles, dtype=np.int64)
    kept: list[_DailyCells] = []
    for i in range(n_blocks):
        cells = block_cells(i, count=True)
        readers_per_article += np.bincount(_runs(cells.pair) % n_articles, minlength=n_articles)
        if n_blocks == 1:
            kept.append(cells)
        del cells
    article_ok = readers_per_article > settings.min_readers_per_article

    # Pass 2: the readers' rules, the decay, and the block's rows of the matrix.
    pieces = []
    for i, (lo, hi) in enumerate(reader_ranges):
        cells = kept.pop() if kept else block_cells(i, count=False)
        cells = cells.take(article_ok[cells.pair % n_articles])
        reader = cells.pair // n_articles - lo
        articles_per_reader = np.bincount(_runs(cells.pair) // n_articles - lo, minlength=hi - lo)
        value_per_reader = np.bincount(reader, weights=cells.value, minlength=hi - lo)
        enough = articles_per_reader > settings.min_articles_per_reader
        if not by_views:
            enough &= value_per_reader > settings.min_seconds_per_reader
        keep = enough[reader]
        cells, reader = cells.take(keep), reader[keep]
        weight = cells.value * _decay(cells.days, as_of, settings.decay_half_life_days)[cells.day]
        block = sparse.csr_matrix(
            (weight.astype(np.float32), (reader, cells.pair % n_articles)), shape=(hi - lo, n_articles)
        )
        block.sum_duplicates()
        pieces.append(block)
        del cells, reader, weight, keep

    matrix, kept_readers, kept_articles = _stack_compact(pieces, n_articles)
    reader_ids = np.asarray(reader_ids, dtype=object)[kept_readers]
    article_ids = np.asarray(article_ids, dtype=object)[kept_articles]
    stats.update(readers=len(reader_ids), articles=len(article_ids), nonzeros=int(matrix.nnz))
    return InteractionMatrix(
        matrix=matrix,
        reader_ids=reader_ids,
        article_ids=article_ids,
        as_of=as_of,
        stats=stats,
        signal=settings.signal,
    )


@dataclass
class _DailyCells:
    """One (reader, article, day) each, sorted by reader, article, day: the pair code
    (reader * articles + article), the day (an index into `days`, epoch ns) and the day's value."""

    pair: np.ndarray
    day: np.ndarray
    value: np.ndarray
    days: np.ndarray

    def take(self, keep: np.ndarray) -> _DailyCells:
        return _DailyCells(self.pair[keep], self.day[keep], self.value[keep], self.days)


def _daily_cells(
    readers: np.ndarray, articles: np.ndarray, epoch: np.ndarray, value: np.ndarray, n_articles: int
) -> _DailyCells:
    """The rows summed per (reader, article, day), with one sort of an integer key (8.7M rows of
    a large site in a few seconds, where groupbys on three text keys took 15 s)."""
    day_codes, days = pd.factorize(epoch, sort=True)
    n_days = max(len(days), 1)
    key = (readers.astype(np.int64) * n_articles + articles) * n_days + day_codes
    del day_codes
    order = np.argsort(key, kind="stable")
    key = key[order]
    value = np.nan_to_num(value[order])  # a missing value adds nothing, as in a sum
    del order
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    daily_key = key[first]
    del key
    daily_value = np.add.reduceat(value, first) if len(first) else np.zeros(0)
    return _DailyCells(daily_key // n_days, daily_key % n_days, daily_value, np.asarray(days))


def _rows_by_block(
    reader_codes: np.ndarray, usable: np.ndarray, readers_per_block: int, n_blocks: int
) -> Callable[[int], np.ndarray]:
    """The usable rows of each block of readers, in their order (one stable radix sort of the
    rows' block numbers, where a mask per block would read every row once per block)."""
    if n_blocks == 1:
        rows = np.flatnonzero(usable)
        return lambda i: rows
    block = (reader_codes.astype(np.int32) // readers_per_block).astype(
        np.int16 if n_blocks < np.iinfo(np.int16).max else np.int32
    )
    block[~usable] = n_blocks  # last: left out
    order = np.argsort(block, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(block, minlength=n_blocks + 1))]
    del block
    return lambda i: order[starts[i] : starts[i + 1]]


def _runs(sorted_codes: np.ndarray) -> np.ndarray:
    """Each value of a sorted array once."""
    if not len(sorted_codes):
        return sorted_codes
    return sorted_codes[np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]]


def _decay(days: np.ndarray, as_of: pd.Timestamp, half_life_days: float) -> np.ndarray:
    """Each day's weight: halved every `half_life_days` of its age (from its midday) at `as_of`."""
    day_start = pd.to_datetime(days, utc=True)
    age_days = (as_of - (day_start + pd.Timedelta(hours=12))).total_seconds().to_numpy() / 86400
    return np.power(0.5, np.clip(age_days, 0, None) / half_life_days)


def _stack_compact(
    blocks: list[sparse.csr_matrix], n_articles: int
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """The blocks' rows (at least one block) one under the other, without the rows and columns
    no cell is left in; and the old row and column of each one kept."""
    # Assembled by hand rather than by sparse.vstack and row / column indexing, which would copy
    # every cell twice more.
    counts = np.concatenate([np.diff(block.indptr) for block in blocks])
    kept_rows = np.flatnonzero(counts)
    nnz = int(counts.sum())
    index_dtype = np.int32 if max(nnz, n_articles) < np.iinfo(np.int32).max else np.int64
    indices = np.concatenate([block.indices for block in blocks])
    data = np.concatenate([block.data for block in blocks])
    blocks.clear()
    columns, kept_columns = _compact(indices, n_articles)
    indptr = np.zeros(len(kept_rows) + 1, dtype=index_dtype)
    np.cumsum(counts[kept_rows], out=indptr[1:])
    matrix = sparse.csr_matrix(
        (data, columns.astype(index_dtype), indptr), shape=(len(kept_rows), len(kept_columns))
    )
    matrix.has_canonical_format = True  # each block's rows were summed and sorted
    return matrix, kept_rows, kept_columns


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

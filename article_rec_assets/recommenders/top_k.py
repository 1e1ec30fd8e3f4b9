"""Top-k selection: of sparse and dense score rows with the project's tie-breaking, of embedding
neighbours in row batches, and the fill of short lists with a fallback order.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from article_rec_assets.recommenders.click_log import NO_ARTICLE

BATCH_ROWS = 2048


def top_k_sparse(
    scores: sparse.spmatrix, sources: np.ndarray, k: int, tiebreak: np.ndarray, with_scores: bool = False
):
    """Per row i, the columns of the k largest positive scores other than `sources[i]`, ties by
    ascending `tiebreak[column]`; NO_ARTICLE pads rows with fewer than k. With `with_scores`,
    also the (n, k) scores (0 in padded slots)."""
    n = scores.shape[0]
    if sparse.issparse(scores) and scores.format == "csr" and n:
        longest = int(np.diff(scores.indptr).max())
        if longest <= max(SHORT_ROWS, 4 * k):
            return _top_k_short_rows(scores, sources, k, tiebreak, longest, with_scores)
    coo = sparse.coo_matrix(scores)
    rows, cols, values = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    keep = (values > 0) & (cols != sources[rows])
    rows, cols, values = rows[keep], cols[keep], values[keep]
    if len(rows) > k:
        # Only entries at least as large as their row's k-th largest can make the list; they
        # are then few enough a row (k, and ties) for the dense path.
        rows, cols, values = _row_threshold(rows, cols, values, n, k)
        lengths = np.bincount(rows, minlength=n)
        longest = int(lengths.max()) if n else 0
        if longest <= max(SHORT_ROWS, 4 * k):
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            kept = sparse.csr_matrix((values, cols, indptr), shape=scores.shape)
            return _top_k_short_rows(kept, sources, k, tiebreak, longest, with_scores)
    order = np.lexsort((tiebreak[cols], -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    position = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    out = np.full((n, k), NO_ARTICLE, dtype=np.int64)
    take = position < k
    out[rows[take], position[take]] = cols[take]
    if not with_scores:
        return out
    top_scores = np.zeros((n, k), dtype=np.float64)
    top_scores[rows[take], position[take]] = values[take]
    return out, top_scores


# Rows this short (a ranker's scored candidates) are ranked as a dense (rows x longest) block.
SHORT_ROWS = 256


def _top_k_short_rows(
    scores: sparse.csr_matrix,
    sources: np.ndarray,
    k: int,
    tiebreak: np.ndarray,
    longest: int,
    with_scores: bool,
):
    """`top_k_sparse` of rows with at most `longest` entries each: every row's entries sorted in a
    dense block, by ascending tiebreak and then (stably) by descending score; the same lists."""
    n = scores.shape[0]
    lengths = np.diff(scores.indptr)
    row = np.repeat(np.arange(n), lengths)
    slot = np.arange(len(row)) - scores.indptr[row]
    values = np.full((n, max(longest, 1)), -np.inf)
    cols = np.full((n, max(longest, 1)), -1, dtype=np.int64)
    values[row, slot] = scores.data
    cols[row, slot] = scores.indices
    values[(values <= 0) | (cols == np.asarray(sources)[:, None])] = -np.inf
    ties = np.where(cols >= 0, tiebreak[np.maximum(cols, 0)], np.iinfo(np.int64).max)
    by_tie = np.argsort(ties, axis=1, kind="stable")
    values, cols = np.take_along_axis(values, by_tie, 1), np.take_along_axis(cols, by_tie, 1)
    best = np.argsort(-values, axis=1, kind="stable")[:, :k]
    values, cols = np.take_along_axis(values, best, 1), np.take_along_axis(cols, best, 1)
    kept = np.isfinite(values)
    out = np.full((n, k), NO_ARTICLE, dtype=np.int64)
    out[:, : cols.shape[1]] = np.where(kept, cols, NO_ARTICLE)
    if not with_scores:
        return out
    top_scores = np.zeros((n, k), dtype=np.float64)
    top_scores[:, : values.shape[1]] = np.where(kept, values, 0.0)
    return out, top_scores


# Elements of one dense block in `_row_threshold` (rows x their longest row's entries).
THRESHOLD_BLOCK = 4_000_000


def _row_threshold(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries at least as large as their row's k-th largest (all of a row with fewer than k):
    each row's k-th largest found by partitioning dense blocks of rows of similar length, not by
    sorting every entry by row and value."""
    if len(rows) and (np.diff(rows) < 0).any():
        by_row = np.argsort(rows, kind="stable")
        rows, cols, values = rows[by_row], cols[by_row], values[by_row]
    counts = np.bincount(rows, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kth = np.full(n, -np.inf)
    long_rows = np.flatnonzero(counts >= k)
    long_rows = long_rows[np.argsort(counts[long_rows], kind="stable")]  # similar lengths together
    first = 0
    while first < len(long_rows):
        last = first + 1  # a block: rows while (rows x the longest of them) stays within the bound
        while last < len(long_rows) and (last + 1 - first) * counts[long_rows[last]] <= THRESHOLD_BLOCK:
            last += 1
        chunk = long_rows[first:last]
        lengths = counts[chunk]
        block = np.full((len(chunk), lengths[-1]), -np.inf)
        block_row = np.repeat(np.arange(len(chunk)), lengths)
        slot = np.arange(len(block_row)) - np.concatenate([[0], np.cumsum(lengths)[:-1]])[block_row]
        block[block_row, slot] = values[starts[chunk][block_row] + slot]
        kth[chunk] = -np.partition(-block, k - 1, axis=1)[:, k - 1]
        first = last
    keep = values >= kth[rows]
    return rows[keep], cols[keep], values[keep]


def top_k_dense(scores: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """Per row, the columns of the k largest finite scores, ties by ascending tiebreak; columns
    scored -inf are never taken (NO_ARTICLE pads)."""
    n, m = scores.shape
    width = min(k, m)
    if width == 0:
        return np.full((n, k), NO_ARTICLE, dtype=np.int64)
    if m > width:
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    else:
        top = np.tile(np.arange(m), (n, 1))
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((tiebreak[top], -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    out = np.full((n, k), NO_ARTICLE, dtype=np.int64)
    out[:, :width] = np.where(np.isfinite(top_scores), top, NO_ARTICLE)
    return out


def head_excluding(order: np.ndarray, sources: np.ndarray, k: int) -> np.ndarray:
    """For each source, the first k of one global ranking with the source left out."""
    candidates = order[: k + 1]
    if len(candidates) == 0:
        return np.full((len(sources), k), NO_ARTICLE, dtype=np.int64)
    excluded = candidates[None, :] == sources[:, None]
    picks = np.argsort(excluded, axis=1, kind="stable")[:, :k]
    out = np.full((len(sources), k), NO_ARTICLE, dtype=np.int64)
    chosen = candidates[picks]
    valid = ~np.take_along_axis(excluded, picks, axis=1)
    out[:, : picks.shape[1]] = np.where(valid, chosen, NO_ARTICLE)
    return out


def fill_with_fallback(
    lists: np.ndarray, sources: np.ndarray, fallback_order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the empty slots of each list with the first fallback articles that are neither the
    source nor already listed. Returns the filled lists and, per list, how many slots were filled.

    Empty slots (NO_ARTICLE) are moved to the end first, keeping the listed articles' order.
    """
    k = lists.shape[1]
    empty_last = np.argsort(lists == NO_ARTICLE, axis=1, kind="stable")
    lists = np.take_along_axis(lists, empty_last, axis=1)
    need = (lists == NO_ARTICLE).sum(axis=1)
    # k + 1 candidates suffice: at most the source and the k - need listed articles are skipped.
    candidates = fallback_order[: k + 1]
    valid = (candidates[None, :] != sources[:, None]) & ~(candidates[None, :, None] == lists[:, None, :]).any(
        axis=2
    )
    nth = np.cumsum(valid, axis=1) - 1
    take = valid & (nth < need[:, None])
    rows, which = np.nonzero(take)
    filled = lists.copy()
    filled[rows, (k - need)[rows] + nth[rows, which]] = candidates[which]
    return filled, take.sum(axis=1)


def top_k_similar(
    vectors: np.ndarray, k: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the k other rows with the best (cosine + 1) / 2 x weight of the candidate.

    Cosines come from a matrix product of unit vectors in row batches (memory stays at a batch x
    n block), and only the k best of each row are sorted (argpartition), not the whole row.
    Returns (indices, scores), each rows x k, best first.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    n = len(unit)
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, BATCH_ROWS):
        stop = min(start + BATCH_ROWS, n)
        # Rank on cosine + 1 (x weight): the same order as the final score, one pass cheaper;
        # the rescaling to [0, 1] is applied to the k kept scores only.
        score = unit[start:stop] @ unit.T
        if weights is not None:
            score += 1
            score *= weights[None, :]
        score[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never the row itself
        indices[start:stop], best = _row_top_k(score, k)
        scores[start:stop] = best / 2 if weights is not None else (best + 1) / 2
    np.clip(scores, 0, 1, out=scores)  # float error can put a cosine a hair above 1
    return indices, scores


def _row_top_k(score: np.ndarray, k: int, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest values and their columns, best first (ties: lower column first).

    Rather than partitioning whole rows: the k-th largest of the rows' chunk maxima is a floor
    for their k-th largest value, so only the few values at or above it are sorted.
    """
    rows, n = score.shape
    maxima = np.maximum.reduceat(score, np.arange(0, n, chunk), axis=1)
    if maxima.shape[1] < k:
        floor = np.full(rows, -np.inf, dtype=score.dtype)
    else:
        floor = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]
    row, column = np.nonzero(score >= floor[:, None])
    value = score[row, column]
    order = np.lexsort((column, -value, row))
    row, column, value = row[order], column[order], value[order]
    rank = np.arange(len(row)) - np.searchsorted(row, np.arange(rows))[row]
    keep = rank < k
    return column[keep].reshape(rows, k), value[keep].reshape(rows, k)

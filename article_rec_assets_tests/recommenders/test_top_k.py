"""Top-k of sparse score rows: the dense path for short rows (a ranker's scored candidates) gives
the lists and scores of the general one, ties, non-positive scores and the source included."""

import numpy as np
from scipy import sparse

from article_rec_assets.recommenders import top_k
from article_rec_assets.recommenders.top_k import top_k_sparse


def test_short_rows_rank_as_the_general_path_does() -> None:
    rng = np.random.default_rng(1)
    for trial in range(200):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 60))
        scores = sparse.random(n, m, density=rng.random(), format="csr", random_state=trial)
        # Few distinct values (ties), some negative (never listed).
        scores.data = np.round(scores.data * rng.integers(1, 4), 1) - (rng.random(scores.nnz) < 0.1) * 0.5
        sources, tiebreak, k = rng.integers(0, m, n), rng.integers(0, 5, m), int(rng.integers(1, 12))
        short = top_k_sparse(scores, sources, k, tiebreak, with_scores=True)  # csr: the dense path
        general = top_k_sparse(scores.tocoo(), sources, k, tiebreak, with_scores=True)
        np.testing.assert_array_equal(short[0], general[0])
        np.testing.assert_array_equal(short[1], general[1])


def reference_top_k(dense: np.ndarray, sources: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """Row by row: positive scores other than the source's, by descending score then tiebreak."""
    out = np.full((len(dense), k), -1, dtype=np.int64)
    for i, row in enumerate(dense):
        ranked = sorted(
            (c for c in np.flatnonzero(row > 0) if c != sources[i]), key=lambda c: (-row[c], tiebreak[c], c)
        )
        out[i, : len(ranked[:k])] = ranked[:k]
    return out


def test_long_rows_keep_the_exact_lists_when_thresholded_in_blocks(monkeypatch) -> None:
    """Rows with many entries (the blend's over a week) are cut at each row's k-th largest before
    the sort; dense blocks of a few rows each (a small block size) give the same lists."""
    monkeypatch.setattr(top_k, "THRESHOLD_BLOCK", 300)
    rng = np.random.default_rng(7)
    for trial in range(60):
        n, m = int(rng.integers(1, 30)), int(rng.integers(300, 800))
        dense = np.round(rng.random((n, m)) * rng.integers(2, 6), 1)  # ties at every threshold
        dense[rng.random((n, m)) < rng.random() * 0.9] = 0
        dense[rng.random((n, m)) < 0.05] = -1.0
        sources, tiebreak = rng.integers(0, m, n), rng.permutation(m)
        k = int(rng.integers(1, 40))
        coo = sparse.coo_matrix(dense)
        shuffled = rng.permutation(coo.nnz)  # entries in no row order
        unsorted = sparse.coo_matrix(
            (coo.data[shuffled], (coo.row[shuffled], coo.col[shuffled])), shape=(n, m)
        )
        expected = reference_top_k(dense, sources, k, tiebreak)
        for scores in (sparse.csr_matrix(dense), unsorted):
            lists, values = top_k_sparse(scores, sources, k, tiebreak, with_scores=True)
            np.testing.assert_array_equal(lists, expected, err_msg=f"trial {trial}")
            np.testing.assert_array_equal(
                values, np.where(expected >= 0, dense[np.arange(n)[:, None], expected], 0)
            )

"""Top-k of sparse score rows: the dense path for short rows (a ranker's scored candidates) gives
the lists and scores of the general one, ties, non-positive scores and the source included."""

import numpy as np
from scipy import sparse

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

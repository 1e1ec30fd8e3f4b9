"""The simple recommenders: popularity (last hour, window), successor counts, session
co-occurrence and item-kNN cosine. Fallbacks of the product and baselines of the backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.click_log import TrainingClicks
from article_rec_assets.recommenders.top_k import head_excluding, top_k_sparse


class LastHourPopularity(Recommender):
    """Clicks in [t0 - 1 h, t0), ties by window clicks: the same list for every source."""

    name = "last-hour popularity"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        self.order = train.fallback_order

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        return head_excluding(self.order, np.asarray(source_ids), k)


class WindowPopularity(Recommender):
    """Clicks over the whole training window (7 days), ties by last-hour clicks."""

    name = "7-day popularity"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        cat = train.catalogue
        self.order = cat[np.lexsort((cat, -train.last_hour_clicks[cat], -train.window_clicks[cat]))]

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        return head_excluding(self.order, np.asarray(source_ids), k)


class SuccessorCounts(Recommender):
    """How often b immediately followed a in a training session; ties by `train.tie_rank`."""

    name = "successor counts"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        source, target = train.successor_pairs()
        candidate = train.in_catalogue()[target]
        source, target = source[candidate], target[candidate]
        n = train.n_articles
        self.counts = sparse.csr_matrix(
            (np.ones(len(source), dtype=np.float32), (source, target)), shape=(n, n)
        )
        self.counts.sum_duplicates()
        self.tiebreak = train.tie_rank

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids)
        return top_k_sparse(self.counts[source_ids], source_ids, k, self.tiebreak)


class SessionCooccurrence(Recommender):
    """How many training sessions hold both a and b; ties by `train.tie_rank`."""

    name = "session co-occurrence"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        sessions = train.session_matrix()
        # Columns of articles that are not candidates are zeroed: they are never listed.
        self.sessions = (sessions @ sparse.diags(train.in_catalogue().astype(np.float32))).tocsc()
        self.sessions.eliminate_zeros()
        self.by_article = sessions.T.tocsr()  # articles x sessions (any source)
        self.tiebreak = train.tie_rank

    def _cooccurrence(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        return (self.by_article[source_ids] @ self.sessions).tocsr()

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids)
        return top_k_sparse(self._cooccurrence(source_ids), source_ids, k, self.tiebreak)


class ItemKNNCosine(SessionCooccurrence):
    """Cosine between the articles' binary session vectors (every neighbour kept)."""

    name = "item-kNN cosine"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        super().fit(train, t0)
        self.norms = np.sqrt(np.asarray(self.by_article.getnnz(axis=1), dtype=np.float64))

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids)
        counts = self._cooccurrence(source_ids).tocoo()
        cosine = counts.data / (self.norms[source_ids][counts.row] * self.norms[counts.col])
        scores = sparse.coo_matrix((cosine, (counts.row, counts.col)), shape=counts.shape)
        return top_k_sparse(scores, source_ids, k, self.tiebreak)

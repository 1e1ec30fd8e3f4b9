"""Recency-weighted successor blend: "readers of this article also read".

For a source article a, each candidate b is scored

    score(a, b) = F_short(a, b) + long_weight * F_long(a, b)
                  + backward_weight * (B_short(a, b) + long_weight * B_long(a, b))
                  + prior_weight * recent_share(b)

where F_tau(a, b) sums, over the training sessions in which b immediately followed a, the weight
exp(-age / tau) with age the hours from b's click to t0 (recent transitions count more), and
B_tau(a, b) is the same for a immediately following b. recent_share(b) is b's share of the clicks in
the last `prior_minutes` before t0; it is added for the `prior_top` most clicked of those articles
only, so that brand-new articles with few reads but recent clicks are always candidates and sources
with little evidence of their own lean on what is read now (a Dirichlet-style prior: its pull
shrinks as a source's own weighted counts grow). Ties are broken by `train.tie_rank`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.logic.evaluation import (
    MS_PER_HOUR,
    Recommender,
    TrainingClicks,
    top_k_sparse,
)


class RecencySuccessorBlend(Recommender):
    """Blend of exponentially decayed immediate-successor counts (two half-lives, both directions)
    and a last-30-minutes popularity prior. See the module docstring for the score."""

    name = "recency successor blend"

    def __init__(
        self,
        short_tau_hours: float = 0.5,
        long_tau_hours: float = 3.0,
        long_weight: float = 0.3,
        backward_weight: float = 0.3,
        prior_weight: float = 10.0,
        prior_minutes: float = 30.0,
        prior_top: int = 100,
    ):
        if short_tau_hours <= 0 or long_tau_hours <= 0:
            raise ValueError("decay times must be positive")
        self.short_tau_hours = short_tau_hours
        self.long_tau_hours = long_tau_hours
        self.long_weight = long_weight
        self.backward_weight = backward_weight
        self.prior_weight = prior_weight
        self.prior_minutes = prior_minutes
        self.prior_top = prior_top

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        n = train.n_articles
        end = pd.Timestamp(t0).value // 1_000_000  # epoch ms (UTC)
        same = train.session[1:] == train.session[:-1]
        source, target = train.article[:-1][same], train.article[1:][same]
        age_hours = (end - train.timestamp[1:][same]) / MS_PER_HOUR
        keep = source != target
        source, target, age_hours = source[keep], target[keep], age_hours[keep]
        weight = np.exp(-age_hours / self.short_tau_hours) + self.long_weight * np.exp(
            -age_hours / self.long_tau_hours
        )
        forward = sparse.csr_matrix((weight, (source, target)), shape=(n, n))
        backward = sparse.csr_matrix((weight, (target, source)), shape=(n, n))
        self.scores = (forward + self.backward_weight * backward).tocsr()
        self.scores.sum_duplicates()

        recent = train.timestamp >= end - round(self.prior_minutes * 60_000)
        clicks = np.bincount(train.article[recent], minlength=n).astype(np.float64)
        share = clicks / max(clicks.sum(), 1.0)
        top = np.lexsort((train.tie_rank, -share))[: self.prior_top]
        self.prior_articles = top[share[top] > 0]
        self.prior_values = self.prior_weight * share[self.prior_articles]
        self.tiebreak = train.tie_rank

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        rows = self.scores[source_ids]
        m = len(self.prior_articles)
        if m and self.prior_weight > 0:
            prior = sparse.csr_matrix(
                (
                    np.tile(self.prior_values, len(source_ids)),
                    (np.repeat(np.arange(len(source_ids)), m), np.tile(self.prior_articles, len(source_ids))),
                ),
                shape=rows.shape,
            )
            rows = rows + prior
        return top_k_sparse(rows.tocsr(), source_ids, k, self.tiebreak)

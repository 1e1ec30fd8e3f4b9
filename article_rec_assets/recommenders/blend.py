"""Recency-weighted successor blend: "readers of this article also read".

For a source article a, each candidate b is scored

    score(a, b) = cat(b) * fresh(b) * (T(a, b) + knn_weight * cos_K(a, b))
                  + prior_weight * recent_share(b)                      [b among the prior_top]

    T(a, b) = sum over d = 1 .. max_distance of distance_decay ** (d - 1)
              * (F_d(a, b) + backward_weight * F_d(b, a))

where F_d(a, b) sums, over the training sessions in which b was clicked d clicks after a (d = 1: b
immediately followed a), the weight exp(-age / short_tau_hours) + long_weight * exp(-age /
long_tau_hours), with age the hours from b's click to t0 (recent transitions count more). F_d(b, a)
is the same for a clicked d clicks after b (backward neighbours); pairs of an article with itself
are dropped.

cos_K(a, b) is item-item co-visitation from the `implicit` library (`ItemItemRecommender`): the
cosine between the articles' columns of a sessions x articles matrix whose entries are
exp(-age / knn_tau_hours) per click (age from the click to t0), kept for the `knn_neighbours` most
similar articles of each a (cos_K(a, a) = 0).

fresh(b) = 1 + freshness_weight * exp(-max(0, hours from b's publish time to t0) / freshness_tau_hours)
(1 when the publish time is unknown): recently published articles are boosted.

cat(b) is 1 for articles of the training catalogue (`train.in_catalogue()`) and 0 otherwise, so only
catalogue articles ever score above 0 (also through the prior).

recent_share(b) is b's share of the clicks on catalogue articles in the last `prior_minutes` before
t0; it is added for the `prior_top` articles of largest share only, so that brand-new articles with
recent clicks are always candidates and sources with little evidence of their own lean on what is
read now. Ties are broken by `train.tie_rank`.

Time constants (short_tau_hours, long_tau_hours, knn_tau_hours, prior_minutes; not the freshness,
which is about the article's age) are set for a site with `reference_clicks_per_hour`; on a quieter
site they are multiplied by time_scale = reference / (clicks per hour over the last day before t0),
between 1 and `max_time_scale`, so that each memory spans about as many readings.
"""

from __future__ import annotations

from collections.abc import Mapping

import implicit.nearest_neighbours  # imported before any BLAS thread limit is set (see `_covisitation`)
import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.click_log import MS_PER_HOUR, PairSums, TrainingClicks
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets.settings.sites import BlendSettings


class RecencySuccessorBlend(Recommender):
    """Exponentially decayed successor counts (two decay times, both directions, up to
    `max_distance` clicks apart) plus implicit's recency-weighted item-item cosine, boosted for
    fresh articles, plus a popularity prior over the last minutes, with time constants stretched
    on quiet sites. See the module docstring for the score."""

    name = "recency successor blend"

    def __init__(self, settings: BlendSettings | None = None, **overrides: float) -> None:
        given = settings.model_dump(exclude_unset=True) if settings is not None else {}
        self.settings = BlendSettings(**{**given, **overrides})  # checked there (names, ranges)
        for name, value in self.settings.model_dump().items():
            setattr(self, name, value)
        self.time_scale = 1.0

    def fit(
        self, train: TrainingClicks, t0: pd.Timestamp, pair_sums: Mapping[int, PairSums] | None = None
    ) -> None:
        """Fit on `train` as of `t0`; `pair_sums` by distance where the caller has them already
        (`PairSums.of(train, d)`: the ranker's signals read them too)."""
        n = train.n_articles
        end = pd.Timestamp(t0).value // 1_000_000  # epoch ms (UTC)
        candidate = train.in_catalogue()
        # Reading-time constants are set for a busy site; a quieter one needs longer memories to
        # see as many reading events, so they stretch with the last day's traffic.
        clicks_per_hour = np.count_nonzero(train.timestamp >= end - 24 * MS_PER_HOUR) / 24
        self.time_scale = float(
            np.clip(self.reference_clicks_per_hour / max(clicks_per_hour, 1e-9), 1.0, self.max_time_scale)
        )
        short_tau = self.short_tau_hours * self.time_scale
        long_tau = self.long_tau_hours * self.time_scale

        # Kept: the learned ranker (recommenders/ranker.py) reads it as a feature of its own.
        # First, while nothing else of the fit is held (implicit's copies of the clicks).
        self.covisitation = (
            self._covisitation(train, end) if self.knn_weight > 0 else sparse.csr_matrix((n, n))
        )
        # sum over d of distance_decay ** (d - 1) * F_d, summed by distinct pair first
        # (PairSums), then its transpose for the backward neighbours: a few copies of
        # the distinct pairs, never a copy of every occurrence.
        forward = sparse.csr_matrix((n, n))
        for d in range(1, self.max_distance + 1):
            pairs = pair_sums[d] if pair_sums is not None and d in pair_sums else PairSums.of(train, d)
            age_hours = (end - pairs.stamp) / MS_PER_HOUR
            weight = np.exp(-age_hours / short_tau) + self.long_weight * np.exp(-age_hours / long_tau)
            forward = forward + pairs.matrix(pairs.sums(weight) * self.distance_decay ** (d - 1))
            del pairs, age_hours, weight
        backward = forward.T.tocsr()
        backward.data *= self.backward_weight
        scores = forward + backward
        del forward, backward
        scores = scores + self.knn_weight * self.covisitation

        age_published = np.clip((end - train.published_ms) / MS_PER_HOUR, 0, None)
        fresh = np.exp(-age_published / self.freshness_tau_hours)
        fresh = np.where(np.isnan(fresh), 0.0, fresh)  # unknown publish time: no boost
        self.column_weight = np.where(candidate, 1.0 + self.freshness_weight * fresh, 0.0)
        scores.sum_duplicates()
        scores.data *= self.column_weight[scores.indices]  # in place: scores @ diag(column_weight)
        scores.eliminate_zeros()
        self.scores = scores

        recent = train.timestamp >= end - round(self.prior_minutes * self.time_scale * 60_000)
        clicks = np.bincount(train.article[recent], minlength=n).astype(np.float64) * candidate
        share = clicks / max(clicks.sum(), 1.0)
        top = np.lexsort((train.tie_rank, -share))[: self.prior_top]
        self.prior_articles = top[share[top] > 0]
        self.prior_values = self.prior_weight * share[self.prior_articles]
        self.tiebreak = train.tie_rank

    def _covisitation(self, train: TrainingClicks, end: int) -> sparse.csr_matrix:
        """implicit's item-item cosine on recency-weighted sessions x articles: each article's
        `knn_neighbours` nearest others (articles x articles, sparse)."""
        n = train.n_articles
        if len(train) == 0:
            return sparse.csr_matrix((n, n))
        # Sessions are sorted, so a running count of session changes numbers them 0, 1, ...
        rows = np.concatenate([[0], np.cumsum(train.session[1:] != train.session[:-1])])
        weight = np.exp(-(end - train.timestamp) / MS_PER_HOUR / (self.knn_tau_hours * self.time_scale))
        visits = sparse.csr_matrix((weight, (rows, train.article)), shape=(int(rows[-1]) + 1, n))
        del rows, weight
        visits.sum_duplicates()
        # Built this way to the last bit on purpose: implicit picks among equal cosines (articles
        # read only in the same sessions) by the input's order and rounding, so the same cosines
        # built in place (less memory) give other neighbours and other lists.
        norms = np.sqrt(np.asarray(visits.multiply(visits).sum(axis=0)).ravel())
        unit = (visits @ sparse.diags(1.0 / np.where(norms > 0, norms, 1.0))).tocsr()
        del visits
        with threadpool_limits(1, "blas"):
            knn = implicit.nearest_neighbours.ItemItemRecommender(K=self.knn_neighbours + 1, num_threads=1)
            knn.fit(unit, show_progress=False)
        similarity = knn.similarity.tocoo()
        off_diagonal = similarity.row != similarity.col
        return sparse.csr_matrix(
            (
                similarity.data[off_diagonal].astype(np.float64),
                (similarity.row[off_diagonal], similarity.col[off_diagonal]),
            ),
            shape=(n, n),
        )

    def score_rows(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        """Blend scores, one row per source, one column per article code (0 = not a candidate).

        Only catalogue articles (`train.in_catalogue()`) score above 0; the source's own column may.
        The offline evaluation ranks these rows with `recommend`, the pipeline turns them into
        published scores (`recommenders.article_model`)."""
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
        return rows.tocsr()

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        return top_k_sparse(self.score_rows(source_ids), source_ids, k, self.tiebreak)

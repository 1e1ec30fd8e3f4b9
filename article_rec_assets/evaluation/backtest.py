"""The per-window backtest: the evaluation's own fold (train on the clicks before a window, score
the window's within-session pairs) for the model, the baselines and the model currently
published, and the verdict that approves a model for publishing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from article_rec_assets.evaluation.folds import fold_pairs, session_pairs
from article_rec_assets.evaluation.replay import evaluate_fold
from article_rec_assets.recommenders.article_model import MODEL_NAME, ArticleModel
from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.baselines import LastHourPopularity, SuccessorCounts
from article_rec_assets.recommenders.click_log import (
    NO_ARTICLE,
    ClickLog,
    TrainingClicks,
    training_clicks,
)
from article_rec_assets.settings.sites import EvaluationSettings

PUBLISHED_NAME = "published model"
METRICS = ("HR@10", "MRR@10", "NDCG@10", "coverage", "fallback share")
BACKTEST_K = 10  # the list length the metrics are at


class PublishedLists(Recommender):
    """The lists the serving database holds now, replayed as a recommender (articles outside the
    training catalogue are dropped; the fold's fallback fills their slots, as for every model)."""

    name = PUBLISHED_NAME

    def __init__(self, published: pd.DataFrame, article_ids: np.ndarray):
        self.published = published
        self.code_of = pd.Series(np.arange(len(article_ids)), index=np.asarray(article_ids).astype(str))

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        rows = self.published.assign(
            source=self.code_of.reindex(self.published["source_entity_id"].astype(str)).to_numpy(),
            target=self.code_of.reindex(self.published["recommended_external_id"].astype(str)).to_numpy(),
        ).dropna(subset=["source", "target"])
        rows = rows[train.in_catalogue()[rows["target"].to_numpy(dtype=np.int64)]]
        rows = rows.sort_values(["source", "score", "recommended_external_id"], ascending=[True, False, True])
        self.lists = {
            int(source): group["target"].to_numpy(dtype=np.int64) for source, group in rows.groupby("source")
        }

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        out = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
        for i, source in enumerate(np.asarray(source_ids)):
            items = self.lists.get(int(source))
            if items is not None:
                items = items[items != source][:k]
                out[i, : len(items)] = items
        return out


class ModelLists(Recommender):
    """A fitted article model asked, by article id, for the lists it scored at its fit (all a
    stored model holds): the backtest's model, trained before the window. Its articles outside
    the fold's catalogue are dropped (the fold's fallback fills their slots, as for every model),
    and a source it never saw has no list, as in serving."""

    name = MODEL_NAME

    def __init__(self, model: ArticleModel, article_ids: np.ndarray):
        self.model = model
        ids = np.asarray(article_ids).astype(str)
        model_ids = np.asarray(model.article_ids).astype(str)
        model_code = pd.Series(np.arange(len(model_ids)), index=model_ids)
        log_code = pd.Series(np.arange(len(ids)), index=ids)
        self.model_code = model_code.reindex(ids).fillna(-1).to_numpy(dtype=np.int64)
        self.log_code = log_code.reindex(model_ids).fillna(-1).to_numpy(dtype=np.int64)

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        self.in_catalogue = train.in_catalogue()

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        out = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
        sources = self.model_code[source_ids]
        known = sources >= 0
        listed = self.model.listed(sources[known], k)[0]
        mapped = np.where(listed >= 0, self.log_code[np.maximum(listed, 0)], NO_ARTICLE)
        valid = (mapped >= 0) & self.in_catalogue[np.maximum(mapped, 0)] & (mapped != source_ids[known, None])
        order = np.argsort(~valid, axis=1, kind="stable")  # the kept ones first, in the model's order
        mapped = np.take_along_axis(np.where(valid, mapped, NO_ARTICLE), order, axis=1)
        out[known] = mapped
        return out


NOT_JUDGED = "not judged"


@dataclass
class Backtest:
    metrics: pd.DataFrame  # one row per recommender: pairs and METRICS
    passed: bool
    reason: str
    train_clicks: int
    seconds: float

    @property
    def judged(self) -> bool:
        """False when the window had too few reading pairs to judge the model (it may publish)."""
        return not self.reason.startswith(NOT_JUDGED)


def backtest(
    log: ClickLog,
    candidates: np.ndarray,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    model: ArticleModel | None,
    train_days: float,
    evaluation: EvaluationSettings,
    published: pd.DataFrame | None = None,
) -> Backtest:
    """Score the pairs whose second click falls in the window for `model` (trained on the clicks
    before `window_start`: the stored model of the window before, or one fitted the same way),
    and for last-hour popularity, successor counts and the published lists trained on the
    `train_days` before it. Without a model (no window before this one), nothing is judged."""
    started = time.perf_counter()
    train = training_clicks(log, window_start, train_days, candidates=candidates)
    hours = (window_end - window_start).total_seconds() / 3600
    pairs = fold_pairs(session_pairs(log), window_start, hours)
    recommenders: list[Recommender] = [LastHourPopularity(), SuccessorCounts()]
    if model is not None:
        recommenders.insert(0, ModelLists(model, log.article_ids))
    if published is not None and len(published):
        recommenders.append(PublishedLists(published, log.article_ids))
    results = evaluate_fold(train, pairs, recommenders, k=BACKTEST_K)
    rows = []
    for r in results:
        n = max(r.pairs, 1)
        rows.append(
            {
                "recommender": r.recommender,
                "pairs": r.pairs,
                "HR@10": r.hits / n,
                "MRR@10": r.reciprocal_rank / n,
                "NDCG@10": r.ndcg / n,
                "coverage": r.covered / max(r.catalogue, 1),
                "fallback share": r.fill_slots / (n * 10),
            }
        )
    metrics = pd.DataFrame(rows, columns=["recommender", "pairs", *METRICS])
    if model is None:
        passed, reason = True, f"{NOT_JUDGED}: no model trained before the window"
    else:
        passed, reason = verdict(metrics, evaluation)
    return Backtest(metrics, passed, reason, len(train), time.perf_counter() - started)


def verdict(metrics: pd.DataFrame, evaluation: EvaluationSettings) -> tuple[bool, str]:
    """May the model be published? Not when it scores below last-hour popularity, or more than
    `max_drop_vs_published` (relative) below the model currently published, on the backtest's
    `metric`. Too few pairs to judge: yes, and the reason says so."""
    by_name = metrics.set_index("recommender")
    metric = evaluation.metric
    pairs = int(by_name.loc[MODEL_NAME, "pairs"]) if MODEL_NAME in by_name.index else 0
    if pairs < evaluation.min_pairs:
        return True, f"{NOT_JUDGED}: {pairs} reading pairs in the window, fewer than {evaluation.min_pairs}"
    model = float(by_name.loc[MODEL_NAME, metric])
    popular = float(by_name.loc[LastHourPopularity.name, metric])
    others = f"last-hour popularity {popular:.4f}"
    if SuccessorCounts.name in by_name.index:
        others += f", successor counts {float(by_name.loc[SuccessorCounts.name, metric]):.4f}"
    others += f" on {pairs} pairs"
    if model < popular:
        return False, (
            f"{metric} {model:.4f} is below last-hour popularity's {popular:.4f} on {pairs} pairs: "
            "the published model keeps serving"
        )
    if PUBLISHED_NAME in by_name.index:
        current = float(by_name.loc[PUBLISHED_NAME, metric])
        floor = current * (1 - evaluation.max_drop_vs_published)
        if model < floor:
            return False, (
                f"{metric} {model:.4f} is more than {evaluation.max_drop_vs_published:.0%} below the "
                f"published model's {current:.4f} on {pairs} pairs: the published model keeps serving"
            )
        return True, f"approved: {metric} {model:.4f} vs {others}, published model {current:.4f}"
    return True, f"approved: {metric} {model:.4f} vs {others} (no model published yet)"

"""Offline evaluation: replay a click log, retrain every 2 hours, ask for the next click of each session.

The protocol (the one PROVENANCE.md of the Globo.com G1 files describes, with reference figures):

* folds start at every `step_hours` UTC boundary t0 of the chosen days (every even hour by default);
* training clicks are those with timestamp in [t0 - train_days, t0): nothing at or after t0 is seen;
* test pairs are consecutive clicks (a -> b) of one session whose click b falls in [t0, t0 + step);
  a itself may be before or after t0 (a pair a -> a, a reload, is dropped);
* each recommender is fitted on the training clicks and lists, for a source article a, articles
  clicked in the training window, never a itself, best first;
* lists shorter than k are filled with last-hour popularity: clicks in [t0 - 1 h, t0), ties broken
  by clicks over the whole training window, then by ascending article id. The share of the top-k
  slots that this fill supplies is the "fallback share";
* a recommender's own ties (equal counts are common) are broken by last-hour popularity by default
  (ties="popularity", the stronger baseline) or by ascending article id (ties="id", which
  reproduces PROVENANCE.md's reference figures to the digits printed there);
* HR@k, MRR@k and NDCG@k (one relevant article, b) are micro-averaged over the pairs of a day;
  catalogue coverage is, per fold, the share of training-window articles that appear in at least
  one top-k list served in that fold (fill included), then averaged over folds with equal weight.

Everything here is plain numpy / pandas / scipy, no Dagster. Article, reader and session ids are
encoded once into dense integer codes (`ClickLog`); recommenders work on article codes.

The G1 files are non-commercial research data: `read_g1` reads them where they lie at run time
(../shared/data/globo-g1 next to the repository); nothing of them is copied into the repository.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import get_args

import numpy as np
import pandas as pd

from article_rec_assets.evaluation.folds import Pairs, fold_pairs, fold_starts, session_pairs
from article_rec_assets.evaluation.metrics import FoldResult, check_lists, rank_metrics
from article_rec_assets.recommenders.als import ALSEmbedder, EmbeddingRecommender
from article_rec_assets.recommenders.article_model import MODEL_NAME, PipelineModel, window_als
from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.baselines import (
    ItemKNNCosine,
    LastHourPopularity,
    SessionCooccurrence,
    SuccessorCounts,
    WindowPopularity,
)
from article_rec_assets.recommenders.click_log import ClickLog, TrainingClicks, training_clicks
from article_rec_assets.recommenders.top_k import fill_with_fallback
from article_rec_assets.settings.sites import (
    ModelSettings,
    RankerFeatureGroup,
    RankerSettings,
    RecommendationSettings,
    TrainingSettings,
)


def _project_als() -> Recommender:
    """ALS as the project runs it: its interaction-matrix filters and decay, its model settings
    and its freshness-weighted cosine (sites' defaults)."""

    return EmbeddingRecommender(
        ALSEmbedder("reader", filters=TrainingSettings()),
        name="ALS (project pipeline)",
        freshness_half_life_days=RecommendationSettings().freshness_half_life_days,
    )


BASELINES: dict[str, Callable[[], Recommender]] = {
    "last-hour": LastHourPopularity,
    "successors": SuccessorCounts,
    "cooccurrence": SessionCooccurrence,
    "item-knn": ItemKNNCosine,
    "7-day": WindowPopularity,
}


def _project_model() -> Recommender:
    """The pipeline's article model (`recommenders.article_model`) with the sites' default settings."""

    settings = ModelSettings()
    return PipelineModel(settings, embed=lambda train: window_als(train, TrainingSettings(), settings))


def _project_variant(name: str, **ranker: object) -> Callable[[], Recommender]:
    """The article model with its ranker settings changed (`project-blend`: the blend alone;
    `project-without-<group>`: the ranker without one feature group, the ablation)."""

    def make() -> Recommender:
        settings = ModelSettings(ranker=RankerSettings(**ranker))
        model = PipelineModel(settings, embed=lambda train: window_als(train, TrainingSettings(), settings))
        model.name = f"{MODEL_NAME} ({name})"
        return model

    return make


MODELS: dict[str, Callable[[], Recommender]] = {
    **BASELINES,
    "project": _project_model,
    "project-blend": _project_variant("blend alone", enabled=False),
    **{
        f"project-without-{group}": _project_variant(f"without {group}", without_features=(group,))
        for group in get_args(RankerFeatureGroup)
    },
    "als": _project_als,
    "als-readers": lambda: EmbeddingRecommender(ALSEmbedder("reader"), name="ALS (reader x article)"),
    "als-sessions": lambda: EmbeddingRecommender(ALSEmbedder("session"), name="ALS (session x article)"),
}


def evaluate_fold(
    train: TrainingClicks,
    pairs: Pairs,
    recommenders: Sequence[Recommender],
    k: int = 10,
    day: str = "",
) -> list[FoldResult]:
    sources, inverse = np.unique(pairs.source, return_inverse=True)
    in_catalogue = train.in_catalogue()
    results = []
    for recommender in recommenders:
        started = time.perf_counter()
        recommender.fit(train, train.t0)
        fitted = time.perf_counter()
        lists = np.asarray(recommender.recommend(sources, k), dtype=np.int64)
        recommended = time.perf_counter()
        if lists.shape != (len(sources), k):
            raise ValueError(f"{recommender.name} returned lists of shape {lists.shape}")
        check_lists(lists, sources, train, recommender.name)
        served, filled = fill_with_fallback(lists, sources, train.fallback_order)
        hit, reciprocal, ndcg = rank_metrics(served[inverse], pairs.target)
        covered = np.unique(served[served >= 0]) if len(served) else np.empty(0)
        results.append(
            FoldResult(
                recommender=recommender.name,
                day=day,
                t0=train.t0,
                pairs=len(pairs),
                hits=int(hit.sum()),
                reciprocal_rank=float(reciprocal.sum()),
                ndcg=float(ndcg.sum()),
                fill_slots=int(filled[inverse].sum()),
                filled_pairs=int((filled[inverse] > 0).sum()),
                cold_sources=int((~in_catalogue[pairs.source]).sum()),
                covered=len(covered),
                catalogue=len(train.catalogue),
                fit_seconds=fitted - started,
                recommend_seconds=recommended - fitted,
            )
        )
    return results


def evaluate(
    log: ClickLog,
    days: Sequence[str],
    recommenders: Sequence[Recommender],
    train_days: float = 7,
    k: int = 10,
    step_hours: int = 2,
    ties: str = "popularity",
    progress: Callable[[str], None] | None = None,
    hours: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Replay `log` over `days`: one row per (fold, recommender) of FoldResult fields. With
    `hours`, only the folds starting at those UTC hours (a quicker look)."""
    pairs = session_pairs(log)
    rows: list[FoldResult] = []
    starts = fold_starts(days, step_hours)
    if hours is not None:
        starts = [t0 for t0 in starts if t0.hour in set(hours)]
    for t0 in starts:
        train = training_clicks(log, t0, train_days, ties)
        fold_pairs_ = fold_pairs(pairs, t0, step_hours)
        results = evaluate_fold(train, fold_pairs_, recommenders, k, day=t0.strftime("%Y-%m-%d"))
        rows.extend(results)
        if progress:
            fits = ", ".join(
                f"{r.recommender} {r.fit_seconds:.2f}+{r.recommend_seconds:.2f}s" for r in results
            )
            progress(f"{t0:%Y-%m-%d %H:%M} pairs={len(fold_pairs_)} catalogue={len(train.catalogue)}: {fits}")
    return pd.DataFrame([r.__dict__ for r in rows])

"""The article model the pipeline publishes.

The pipeline's reading data (sessionized interactions) become the same click log the offline
evaluation replays (`evaluation.replay`), so both run one training code: the recency successor
blend of `recommenders.blend` proposes candidates, the learned ranker of `recommenders.ranker`
(LambdaRank, retrained every run) orders them, optionally joined by ALS neighbours from
`recommenders.als`. The backtest that must approve it every run is `evaluation.backtest`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.catalogue.snapshot import recommendable
from article_rec_assets.recommenders.als import ALSEmbedder, ArticleEmbeddings
from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.blend import RecencySuccessorBlend
from article_rec_assets.recommenders.click_log import (
    NO_ARTICLE,
    ClickLog,
    TrainingClicks,
    click_log,
)
from article_rec_assets.recommenders.ranker import LearnedRanker, fit_ranker
from article_rec_assets.recommenders.serving import ARTICLE_MODEL, RECOMMENDATION_COLUMNS, similar_articles
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets.settings.sites import (
    ModelSettings,
    RecommendationSettings,
    TrainingSettings,
)

MODEL_NAME = "article model"

# How many ALS neighbours per article join the blend (further ones are noise at that weight).
ALS_NEIGHBOURS = 50


def interaction_clicks(interactions: pd.DataFrame) -> pd.DataFrame:
    """One click per (reader, session, article): when the session first reached the article.

    Sessionized interactions hold a row per (reader, session, article, day) and window, so one
    page view can show up in several rows (pings in later windows, a session across midnight);
    its first appearance is the click. Rows that are not articles are left out.
    """
    rows = interactions[interactions["external_id"].notna()]
    first = rows.groupby(["reader_id", "session_id", "external_id"], observed=True, as_index=False)[
        "first_seen"
    ].min()
    return pd.DataFrame(
        {
            "reader_id": _as_text(first["reader_id"]),
            "session_id": _as_text(first["session_id"]),
            "article_id": _as_text(first["external_id"]),
            "timestamp": first["first_seen"],
        }
    )


def _as_text(column: pd.Series) -> pd.Series:
    """Text ids as text; categories (a trailing load's) stay categories, sorted so that their
    codes order as the text does (click_log factorizes them without touching the strings)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.cat.remove_unused_categories()
        if column.cat.categories.dtype != object:  # numeric ids: ordered as their text
            column = column.cat.rename_categories(column.cat.categories.astype(str).astype(object))
        if not column.cat.categories.is_monotonic_increasing:
            column = column.cat.reorder_categories(column.cat.categories.sort_values())
        return column
    return column.astype(str)


def site_click_log(interactions: pd.DataFrame, catalogue: pd.DataFrame) -> ClickLog:
    """The site's reading as the evaluation's click log, with the catalogue's publish times."""
    clicks = interaction_clicks(interactions)
    published = catalogue.set_index(catalogue["external_id"].astype(str))["published_at"]
    return click_log(clicks, published.dropna())


def known_at_start(earlier: pd.DataFrame, window: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """The reading as the pipeline knew it at `start`, plus the window's own partition.

    The window's rows were received during it; a click stamped before `start` but received late
    counts from `start`, so the backtest never trains on it (it still orders the window's pairs).
    """
    window = window.assign(first_seen=window["first_seen"].clip(lower=start))
    parts = [frame for frame in (earlier, window) if len(frame)]
    return pd.concat(parts, ignore_index=True) if parts else earlier


def candidate_mask(log: ClickLog, catalogue: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Per article code: a recommendable catalogue article published before `as_of`."""
    ok = recommendable(catalogue)
    ok = ok[ok["published_at"] < as_of]
    # A hash lookup: np.isin on object arrays compares every pair (minutes for 25k articles).
    return np.asarray(pd.Index(log.article_ids.astype(str)).isin(ok["external_id"].astype(str)))


@dataclass
class ArticleModel:
    """A fitted blend over one training window (article codes of `article_ids`), its candidates
    ordered by the learned ranker when one was trained (`recommenders/ranker.py`), and optionally
    each candidate's nearest ALS neighbours (cosine rescaled to [0, 1]), added with `als_weight`."""

    article_ids: np.ndarray  # external id of each article code
    catalogue: np.ndarray  # codes that may be recommended
    blend: RecencySuccessorBlend
    tie_rank: np.ndarray
    as_of: pd.Timestamp
    als_neighbours: sparse.csr_matrix | None = None  # articles x articles, ALS_NEIGHBOURS per row
    als_weight: float = 0.0
    ranker: LearnedRanker | None = None  # orders the blend's candidates when it was trained
    stats: dict[str, float | str] = field(default_factory=dict)

    def score_rows(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        """Scores of every article for each source (rows), zero outside the catalogue: both
        components score candidates only (the blend's cat(b), `als_neighbours`)."""
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if self.ranker is not None and self.ranker.booster is not None:
            rows = self.ranker.score_rows(source_ids)  # in (0, 1), as the ALS neighbours' scores
        else:
            rows = self.blend.score_rows(source_ids)
        if self.als_neighbours is not None and self.als_weight > 0:
            rows = (rows + self.als_weight * self.als_neighbours[source_ids]).tocsr()
        return rows

    def recommend_with_scores(self, source_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        return top_k_sparse(self.score_rows(source_ids), source_ids, k, self.tie_rank, with_scores=True)


def als_neighbours(
    embeddings: ArticleEmbeddings, train: TrainingClicks, freshness_half_life_days: float
) -> sparse.csr_matrix:
    """Each candidate's ALS_NEIGHBOURS best candidates scored the old job's way (`similar_articles`:
    cosine rescaled to [0, 1] x the neighbour's freshness), as a sparse articles x articles matrix
    over the article codes of `train`."""
    n = train.n_articles
    ids = np.asarray(train.article_ids).astype(str)
    published = pd.to_datetime(pd.Series(train.published_ms), unit="ms", utc=True)
    candidate = train.in_catalogue()
    catalogue = pd.DataFrame(
        {
            "external_id": pd.array(ids, dtype="string"),
            "published_at": published,
            "exclude_reason": pd.array(np.where(candidate, None, "not_a_candidate"), dtype="string"),
        }
    )
    found = ArticleEmbeddings(
        article_ids=np.asarray(embeddings.article_ids).astype(str),
        vectors=embeddings.vectors,
        as_of=train.t0,
    )
    settings = RecommendationSettings(
        per_article=ALS_NEIGHBOURS, freshness_half_life_days=freshness_half_life_days
    )
    neighbours = similar_articles(found, catalogue, settings)
    code_of = pd.Series(np.arange(n), index=pd.Index(ids))
    return sparse.csr_matrix(
        (
            neighbours["score"].to_numpy(dtype=np.float32),
            (
                code_of[neighbours["source_entity_id"].astype(str)].to_numpy(),
                code_of[neighbours["recommended_external_id"].astype(str)].to_numpy(),
            ),
        ),
        shape=(n, n),
    )


def fit_article_model(
    train: TrainingClicks,
    settings: ModelSettings,
    embeddings: ArticleEmbeddings | None = None,
    freshness_half_life_days: float = RecommendationSettings().freshness_half_life_days,
) -> ArticleModel:
    """The blend fitted on `train` (its catalogue = the candidates), with the ALS neighbours of
    `embeddings` (freshness-weighted with the site's half-life) when given and
    `settings.als_weight` > 0."""
    started = time.perf_counter()
    ranker = None
    if settings.ranker.enabled:
        ranker = fit_ranker(train, settings.ranker, settings.blend)
        blend = ranker.signals.blend  # the serving signals hold the blend fitted on all of train
    else:
        blend = RecencySuccessorBlend(settings.blend)
        blend.fit(train, train.t0)
    fitted = time.perf_counter()
    neighbours = None
    if embeddings is not None and settings.als_weight > 0:
        neighbours = als_neighbours(embeddings, train, freshness_half_life_days)
    return ArticleModel(
        article_ids=np.asarray(train.article_ids),
        catalogue=train.catalogue,
        blend=blend,
        tie_rank=train.tie_rank,
        as_of=train.t0,
        als_neighbours=neighbours,
        als_weight=settings.als_weight if neighbours is not None else 0.0,
        ranker=ranker,
        stats={
            "clicks": len(train),
            "sessions": int(np.count_nonzero(np.diff(train.session)) + 1) if len(train) else 0,
            "candidate_articles": len(train.catalogue),
            # > 1: a quiet site, whose decay times stretch with its traffic (recommenders/blend.py).
            "time_scale": round(blend.time_scale, 3),
            "blend_fit_seconds": round(fitted - started, 3),
            "als_neighbour_seconds": round(time.perf_counter() - fitted, 3),
            **(ranker.stats if ranker is not None else {"ranker": "off"}),
        },
    )


def window_als(
    train: TrainingClicks, training: TrainingSettings, settings: ModelSettings
) -> ArticleEmbeddings | None:
    """ALS embeddings from the training window's clicks (the offline evaluation's stand-in for the
    pipeline's `trained_model`, which trains on 28 days of reading time): the project's
    interaction-matrix rules on page views. None when the matrix is too small."""

    codes, vectors = ALSEmbedder("reader", settings=settings, filters=training)(train)
    if not len(codes):
        return None
    ids = np.asarray(train.article_ids)[codes]
    return ArticleEmbeddings(article_ids=ids, vectors=vectors, as_of=train.t0)


class ProjectModel(Recommender):
    """The pipeline's model as a recommender of the offline evaluation (`--models project`)."""

    name = MODEL_NAME

    def __init__(
        self,
        settings: ModelSettings | None = None,
        embed=None,
        freshness_half_life_days: float = RecommendationSettings().freshness_half_life_days,
    ):
        self.settings = settings or ModelSettings()
        self.embed = embed  # optional: TrainingClicks -> ArticleEmbeddings (ALS on the window)
        self.freshness_half_life_days = freshness_half_life_days

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        embeddings = self.embed(train) if self.embed is not None and self.settings.als_weight > 0 else None
        self.model = fit_article_model(train, self.settings, embeddings, self.freshness_half_life_days)

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        return self.model.recommend_with_scores(source_ids, k)[0]


# Share of a published score that says where the article stands in its list (see below).
RANK_SHARE = 0.1


def article_model_recommendations(model: ArticleModel, k: int) -> pd.DataFrame:
    """The `article` model's rows: for every candidate article, its k best others.

    The API orders a list by score alone (then by external id), and the contract has no rank
    column, so the published score must keep the model's order, ties included: it is
    (1 - RANK_SHARE) x the model's score / the list's best + RANK_SHARE x (k + 1 - rank) / k,
    in [0, 1], 1 for the first, strictly decreasing down the list even where the model tied.
    """
    sources = model.catalogue
    lists, scores = model.recommend_with_scores(sources, k)
    listed = lists != NO_ARTICLE
    best = np.where(scores[:, :1] > 0, scores[:, :1], 1.0) if len(scores) else scores[:, :1]
    published = (1 - RANK_SHARE) * np.clip(scores / best, 0, 1) + RANK_SHARE * (k - np.arange(k)) / k
    source_idx, slot = np.nonzero(listed)
    frame = pd.DataFrame(
        {
            "model_type": ARTICLE_MODEL,
            "source_entity_id": pd.array(model.article_ids[sources[source_idx]].astype(str), dtype="string"),
            "recommended_external_id": pd.array(
                model.article_ids[lists[source_idx, slot]].astype(str), dtype="string"
            ),
            "score": np.round(published[source_idx, slot], 6),
            "rank": slot + 1,
        }
    ).astype({"model_type": "string"})
    return frame[list(RECOMMENDATION_COLUMNS)]

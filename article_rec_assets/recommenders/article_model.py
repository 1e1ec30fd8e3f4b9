"""The article model the pipeline publishes.

The pipeline's reading data (sessionized interactions) become the same click log the offline
evaluation replays (`evaluation.replay`), so both run one training code: the recency successor
blend of `recommenders.blend` proposes candidates, the learned ranker of `recommenders.ranker`
(LambdaRank, retrained every run) orders them, optionally joined by ALS neighbours from
`recommenders.als`. The backtest that must approve it every run is `evaluation.backtest`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.catalogue.snapshot import recommendable
from article_rec_assets.recommenders.als import ALSEmbedder, ArticleEmbeddings
from article_rec_assets.recommenders.base import Recommender
from article_rec_assets.recommenders.blend import RecencySuccessorBlend
from article_rec_assets.recommenders.click_log import (
    MS_PER_HOUR,
    NO_ARTICLE,
    ClickLog,
    TrainingClicks,
    click_log,
    epoch_ms_of,
    training_clicks,
)
from article_rec_assets.recommenders.lists import ARTICLE_MODEL, RECOMMENDATION_COLUMNS, similar_articles
from article_rec_assets.recommenders.ranker import (
    LearnedRanker,
    RankerExamples,
    Signals,
    count_pairs,
    fit_ranker,
    label_examples,
    label_window_starts,
)
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets.settings.sites import (
    ModelSettings,
    RecommendationSettings,
    TrainingSettings,
)

MODEL_NAME = "article model"
# The version of the fit (the code version of `trained_model` and `ranker_examples`): a stored
# model or examples of another version are not reused. Change it when the fit's results change.
MODEL_VERSION = "6"

# Blend lists scored at a time: bounds the blend rows held at once (a large site's blend rows
# of every article: hundreds of MB).
LIST_BATCH_SOURCES = 4096
# How many ALS neighbours per article join the blend (further ones are noise at that weight).
ALS_NEIGHBOURS = 50


def interaction_clicks(interactions: pd.DataFrame) -> pd.DataFrame:
    """One click per (reader, session, article): when the session first reached the article.

    Sessionized interactions hold a row per (reader, session, article, day) and window, so one
    page view can show up in several rows (pings in later windows, a session across midnight);
    its first appearance is the click. Rows that are not articles are left out.
    """
    articles = interactions["external_id"].notna()
    rows = interactions if articles.all() else interactions[articles]
    ids = ["reader_id", "session_id", "external_id"]
    if all(isinstance(rows[name].dtype, pd.CategoricalDtype) for name in ids):
        first = _first_seen_by_codes(rows)
    else:
        first = rows.groupby(ids, observed=True, as_index=False)["first_seen"].min()
    return pd.DataFrame(
        {
            "reader_id": _as_ids(first["reader_id"]),
            "session_id": _as_ids(first["session_id"]),
            "article_id": _as_text(first["external_id"]),
            "timestamp": first["first_seen"],
        }
    )


def _first_seen_by_codes(rows: pd.DataFrame) -> pd.DataFrame:
    """`interaction_clicks`' groupby for categorical ids, on their integer codes: the same groups
    in the same order (reader, session, article by code), without hashing three keys per row."""
    ids = ("reader_id", "session_id", "external_id")
    codes = [rows[name].cat.codes.to_numpy() for name in ids]  # int32 or narrower, not copied
    n_sessions = len(rows["session_id"].cat.categories)
    n_articles = len(rows["external_id"].cat.categories)
    # The key built in place: a large site's week has tens of millions of rows, and each
    # temporary of that length would be hundreds of megabytes.
    if len(rows["reader_id"].cat.categories) * n_sessions * n_articles < 2**62:
        key = codes[0].astype(np.int64)
        key *= n_sessions
        key += codes[1]
    else:  # too many ids for one int64 key: the (reader, session) pairs numbered first
        _, key = np.unique(codes[0].astype(np.int64) * n_sessions + codes[1], return_inverse=True)
        key = key.astype(np.int64).ravel()
    key *= n_articles
    key += codes[2]
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    del key
    stamps = rows["first_seen"]
    earliest = np.minimum.reduceat(stamps.array.asi8[order], starts) if len(starts) else starts
    first = order[starts]
    del order
    frame = {
        name: pd.Categorical.from_codes(column[first], dtype=rows[name].dtype)
        for name, column in zip(ids, codes, strict=True)
    }
    frame["first_seen"] = pd.DatetimeIndex(earliest.view(f"M8[{stamps.dt.unit}]")).tz_localize(stamps.dt.tz)
    return pd.DataFrame(frame)


def _as_ids(column: pd.Series) -> pd.Series:
    """Reader and session ids, which only tell clicks apart: categories in increasing order (a
    trailing load's text, or the ranks standing for it: `io_managers.tables.frames_sharing_categories`)
    stay as they are, without text; anything else as `_as_text`."""
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.is_monotonic_increasing:
        return column
    return _as_text(column)


def _as_text(column: pd.Series) -> pd.Series:
    """Text ids as text; categories (a trailing load's) stay categories, sorted so that their
    codes order as the text does (click_log factorizes them without touching the strings)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        if categories.dtype == object and categories.is_monotonic_increasing:
            return column  # a trailing load's, as it comes: unused categories cost nothing here
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


def as_received(whole: pd.DataFrame, windows: Sequence[tuple[pd.Timestamp, int]]) -> pd.DataFrame:
    """Interactions of consecutive windows stacked in `whole`, `windows` giving each window's start
    and rows in that order, with each click counted from its window's start at the earliest: a
    click received late was not known before its window began, so nothing trained before that
    window sees it (the window's own examples and backtest still order its pairs with it)."""
    if not len(whole):
        return whole
    stamps = whole["first_seen"]
    unit = stamps.dt.unit
    starts = np.repeat(
        [pd.Timestamp(start).as_unit(unit).value for start, _ in windows], [n for _, n in windows]
    )
    received = np.maximum(stamps.array.asi8, starts, out=starts)
    # A frame over the same columns, not a copy of them (`assign` copies every column).
    columns = {name: whole[name] for name in whole.columns}
    columns["first_seen"] = pd.Series(pd.to_datetime(received, unit=unit, utc=True), index=whole.index)
    return pd.DataFrame(columns, copy=False)


def candidate_mask(log: ClickLog, catalogue: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Per article code: a recommendable catalogue article published before `as_of`."""
    ok = recommendable(catalogue)
    ok = ok[ok["published_at"] < as_of]
    # A hash lookup: np.isin on object arrays compares every pair (minutes for 25k articles).
    return np.asarray(pd.Index(log.article_ids.astype(str)).isin(ok["external_id"].astype(str)))


@dataclass
class ArticleModel:
    """A fitted article model over one training window (article codes of `article_ids`): the blend,
    its candidates ordered by the learned ranker when one was trained (`recommenders/ranker.py`),
    optionally each candidate's nearest ALS neighbours (cosine rescaled to [0, 1]) added with
    `als_weight`; and the top lists of every article clicked in the window, scored once at the fit.

    Stored (pickled), a model keeps its lists, not its scorers (the blend's and the ranker's
    signals are 20 times their size): a stored model answers for the articles of its training
    window, as the published lists do."""

    article_ids: np.ndarray  # external id of each article code
    catalogue: np.ndarray  # codes that may be recommended
    tie_rank: np.ndarray
    as_of: pd.Timestamp
    blend: RecencySuccessorBlend | None = None  # None in a stored model (as the scorers below)
    als_neighbours: sparse.csr_matrix | None = None  # articles x articles, ALS_NEIGHBOURS per row
    als_weight: float = 0.0
    ranker: LearnedRanker | None = None  # orders the blend's candidates when it was trained
    list_sources: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # sorted codes
    lists: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    list_scores: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    settings: dict = field(default_factory=dict)  # the ModelSettings it was fitted with
    stats: dict[str, float | str] = field(default_factory=dict)
    version: str = MODEL_VERSION

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["blend"] = None
        state["als_neighbours"] = None
        if self.ranker is not None:
            state["ranker"] = replace(self.ranker, signals=None)
        return state

    @property
    def can_score(self) -> bool:
        """Whether the scorers are here (a model just fitted), not only the lists (a stored one)."""
        return self.blend is not None

    def score_rows(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        """Scores of every article for each source (rows), zero outside the catalogue: both
        components score candidates only (the blend's cat(b), `als_neighbours`)."""
        if not self.can_score:
            raise ValueError("a stored article model keeps its lists, not its scorers: refit to score")
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if self.ranker is not None and self.ranker.booster is not None:
            rows = self.ranker.score_rows(source_ids)  # in (0, 1), as the ALS neighbours' scores
        else:
            rows = self.blend.score_rows(source_ids)
        return self._with_als(rows, source_ids)

    def _with_als(self, rows: sparse.csr_matrix, source_ids: np.ndarray) -> sparse.csr_matrix:
        if self.als_neighbours is not None and self.als_weight > 0:
            rows = (rows + self.als_weight * self.als_neighbours[source_ids]).tocsr()
        return rows

    def score_lists(self, train: TrainingClicks, length: int) -> None:
        """The top `length` of every article clicked in the training window: the ranker's for the
        articles read within its `ranked_hours` (one pass, which counts the catalogue's lists for
        its spread penalty on the way), the blend's for the others."""
        sources = np.flatnonzero(train.window_clicks > 0).astype(np.int64)
        # (which sources, their scorer, how many at a time): the ranker's in one pass (its spread
        # penalty counts the catalogue's lists), the blend's whole rows a batch at a time.
        parts = [(np.ones(len(sources), dtype=bool), self.blend.score_rows, LIST_BATCH_SOURCES)]
        if self.ranker is not None and self.ranker.booster is not None:
            ranked = self.ranker.ranks(train, sources)
            parts = [
                (ranked, lambda part: self.ranker.score_lists(part, train.catalogue), len(sources)),
                (~ranked, self.blend.score_rows, LIST_BATCH_SOURCES),
            ]
        self.list_sources = sources
        self.lists = np.full((len(sources), length), NO_ARTICLE, dtype=np.int64)
        self.list_scores = np.zeros((len(sources), length))
        for part, score, batch in parts:  # apart: the ranker's short rows take top_k's quick path
            positions = np.flatnonzero(part)
            for start in range(0, len(positions), batch):
                at = positions[start : start + batch]
                rows = self._with_als(score(sources[at]), sources[at])
                self.lists[at], self.list_scores[at] = top_k_sparse(
                    rows, sources[at], length, self.tie_rank, with_scores=True
                )

    def listed(self, source_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lists scored at the fit, first k: (codes, scores, whether the source had a list);
        an empty row for a source without one."""
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if k > self.lists.shape[1]:
            raise ValueError(f"the article model keeps its top {self.lists.shape[1]}, not {k}")
        lists = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
        scores = np.zeros((len(source_ids), k))
        found = np.zeros(len(source_ids), dtype=bool)
        if len(self.list_sources):
            position = np.minimum(np.searchsorted(self.list_sources, source_ids), len(self.list_sources) - 1)
            found = self.list_sources[position] == source_ids
            lists[found] = self.lists[position[found], :k]
            scores[found] = self.list_scores[position[found], :k]
        return lists, scores, found

    def recommend_with_scores(self, source_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each source's k best (codes, NO_ARTICLE pads) and their scores: the lists scored at the
        fit where they hold the source and k, else scored now (a stored model cannot: it answers
        only for the articles of its window, as the published lists do)."""
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if k <= self.lists.shape[1]:
            lists, scores, found = self.listed(source_ids, k)
        else:
            lists = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
            scores, found = np.zeros((len(source_ids), k)), np.zeros(len(source_ids), dtype=bool)
        missing = ~found
        if missing.any():
            lists[missing], scores[missing] = top_k_sparse(
                self.score_rows(source_ids[missing]), source_ids[missing], k, self.tie_rank, with_scores=True
            )
        return lists, scores


def als_neighbours(
    embeddings: ArticleEmbeddings, train: TrainingClicks, freshness_half_life_days: float
) -> sparse.csr_matrix:
    """Each candidate's ALS_NEIGHBOURS best candidates scored the previous job's way (`similar_articles`:
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


def window_examples(
    log: ClickLog,
    start: pd.Timestamp,
    settings: ModelSettings,
    candidates: np.ndarray | None = None,
    ties: str = "popularity",
    signals: Signals | None = None,
) -> RankerExamples | None:
    """The ranker's examples of the window starting at `start` (`recommenders/ranker.py`): its
    within-session next clicks, over candidates and features from the `session_days` of clicks
    before it (`signals`, when the caller already has them: a model trained as of `start`)."""
    history = training_clicks(log, start, settings.session_days, ties, candidates)
    begin = epoch_ms_of(start)
    source, target, stamp = log.next_clicks
    end = begin + round(settings.ranker.window_hours * MS_PER_HOUR)
    pairs = count_pairs(source, target, stamp, begin, end)
    examples = label_examples(history, pairs, settings.ranker, settings.blend, signals)
    if examples is not None:
        examples.version, examples.settings = MODEL_VERSION, examples_settings(settings)
    return examples


def examples_settings(settings: ModelSettings) -> dict:
    """The model settings a window's examples depend on (the blend's and the signals' days, the
    window, its candidates, sampling and label cap): changing any other (LightGBM's rounds, which
    lists the ranker orders, a feature group left out) keeps the stored examples valid."""
    ranker = settings.ranker
    return {
        "session_days": settings.session_days,
        "blend": settings.blend.model_dump(mode="json"),
        "window_hours": ranker.window_hours,
        "candidates": ranker.candidates,
        "max_sources_per_window": ranker.max_sources_per_window,
        "max_label": ranker.max_label,
    }


def examples_problem(examples: RankerExamples | None, settings: ModelSettings) -> str | None:
    """Why stored examples cannot stand for `window_examples` with `settings` now (None: they can;
    a window stored without examples had no pair among its candidates, whatever built it)."""
    if examples is None:
        return None
    version = vars(examples).get("version")  # examples pickled before versions have none
    if version != MODEL_VERSION:
        return f"built by fit version {version}, the code's is {MODEL_VERSION}"
    if vars(examples).get("settings") != examples_settings(settings):
        return "built with other model settings"
    return None


def fit_article_model(
    train: TrainingClicks,
    settings: ModelSettings,
    examples: Sequence[RankerExamples | None] = (),
    embeddings: ArticleEmbeddings | None = None,
    freshness_half_life_days: float = RecommendationSettings().freshness_half_life_days,
    list_length: int = 10,
) -> ArticleModel:
    """The model fitted on `train` (its catalogue = the candidates): the ranker learns from the
    `examples` of its label windows (`window_examples`), the ALS neighbours of `embeddings` join
    (freshness-weighted with the site's half-life) when given and `settings.als_weight` > 0, and
    the top `list_length` of every article of the window are scored."""
    started = time.perf_counter()
    ranker = None
    if settings.ranker.enabled:
        ranker = fit_ranker(train, settings.ranker, settings.blend, [e for e in examples if e is not None])
        blend = ranker.signals.blend  # the serving signals hold the blend fitted on all of train
    else:
        blend = RecencySuccessorBlend(settings.blend)
        blend.fit(train, train.t0)
    fitted = time.perf_counter()
    neighbours = None
    if embeddings is not None and settings.als_weight > 0:
        neighbours = als_neighbours(embeddings, train, freshness_half_life_days)
    model = ArticleModel(
        article_ids=np.asarray(train.article_ids),
        catalogue=train.catalogue,
        tie_rank=train.tie_rank,
        as_of=train.t0,
        blend=blend,
        als_neighbours=neighbours,
        als_weight=settings.als_weight if neighbours is not None else 0.0,
        ranker=ranker,
        settings=settings.model_dump(mode="json"),
    )
    neighboured = time.perf_counter()
    model.score_lists(train, list_length)
    model.stats = {
        "clicks": len(train),
        "sessions": int(np.count_nonzero(np.diff(train.session)) + 1) if len(train) else 0,
        "candidate_articles": len(train.catalogue),
        "articles_with_lists": len(model.list_sources),
        # > 1: a quiet site, whose decay times stretch with its traffic (recommenders/blend.py).
        "time_scale": round(blend.time_scale, 3),
        "fit_seconds": round(fitted - started, 3),
        "als_neighbour_seconds": round(neighboured - fitted, 3),
        "list_seconds": round(time.perf_counter() - neighboured, 3),
        **(ranker.stats if ranker is not None else {"ranker": "off"}),
    }
    return model


def reuse_problem(
    model: ArticleModel | None, settings: ModelSettings, as_of: pd.Timestamp, k: int
) -> str | None:
    """Why a stored model cannot stand for a fit with `settings` as of `as_of` that lists k
    articles (None: it can, its lists are what that fit would give)."""
    if model is None:
        return "none stored"
    version = vars(model).get("version")  # a model pickled before versions has none of its own
    if version != MODEL_VERSION:
        return f"stored by fit version {version}, the code's is {MODEL_VERSION}"
    if model.as_of != as_of:
        return f"stored as of {model.as_of:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}"
    if model.settings != settings.model_dump(mode="json"):
        return "the site's model settings changed since it was stored"
    if model.lists.shape[1] < k:
        return f"it keeps {model.lists.shape[1]} articles a list, fewer than {k}"
    return None


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


class PipelineModel(Recommender):
    """The pipeline's model as a recommender of the offline evaluation (`--models project`).

    As the pipeline stores each window's examples once, a replay keeps them across its folds: a
    fold labels only the windows the previous folds had not, over the signals the previous fold
    served with where that fold ended where the window starts."""

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
        self._log: ClickLog | None = None
        self._examples: dict[pd.Timestamp, RankerExamples | None] = {}
        self._signals: tuple[pd.Timestamp, Signals] | None = None

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        embeddings = self.embed(train) if self.embed is not None and self.settings.als_weight > 0 else None
        examples = self.examples_for(train)
        self.model = fit_article_model(
            train, self.settings, examples, embeddings, self.freshness_half_life_days
        )
        same_days = train.train_days == self.settings.session_days and train.candidates is None
        if self.model.ranker is not None and same_days:
            self._signals = (train.t0, self.model.ranker.signals)

    def examples_for(self, train: TrainingClicks) -> list[RankerExamples | None]:
        """The examples of the label windows before `train.t0`, each labelled once per log."""
        if not self.settings.ranker.enabled:
            return []
        if train.log is None:
            raise ValueError("the ranker's label windows need the log: make train with training_clicks")
        if train.log is not self._log:
            self._log, self._examples, self._signals = train.log, {}, None
        starts = label_window_starts(train.t0, self.settings.ranker)
        for start in starts:
            if start not in self._examples:
                signals = self._signals[1] if self._signals and self._signals[0] == start else None
                self._examples[start] = window_examples(
                    train.log, start, self.settings, train.candidates, train.ties, signals
                )
        self._examples = {start: self._examples[start] for start in starts}
        return list(self._examples.values())

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

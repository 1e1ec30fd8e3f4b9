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

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
CLICK_COLUMNS = ("reader_id", "session_id", "article_id", "timestamp")
NO_ARTICLE = -1  # an empty list slot
TIES = ("popularity", "id")  # how recommenders order articles of equal score


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ClickLog:
    """A click log with dense integer codes, sorted by session then time.

    `article_ids[code]` is the original id of an article code; `published_ms[code]` its publish
    time in epoch milliseconds (NaN when unknown). Sessions are told apart by (reader, session).
    """

    reader: np.ndarray  # int64 codes
    session: np.ndarray  # int64 codes of (reader_id, session_id)
    article: np.ndarray  # int64 codes
    timestamp: np.ndarray  # int64 epoch milliseconds, UTC
    article_ids: np.ndarray
    published_ms: np.ndarray  # float64, NaN when unknown

    @property
    def n_articles(self) -> int:
        return len(self.article_ids)

    def __len__(self) -> int:
        return len(self.article)


def _epoch_ms(values: pd.Series) -> np.ndarray:
    """Epoch milliseconds from datetimes (naive ones taken as UTC), ISO strings or epoch-ms numbers."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if values.isna().any():
            raise ValueError("timestamps must not be missing")
        return values.to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    if stamps.isna().any():
        raise ValueError("timestamps must not be missing")
    return stamps.dt.as_unit("ms").astype("int64").to_numpy()


def click_log(clicks: pd.DataFrame, published_at: pd.Series | None = None) -> ClickLog:
    """Encode a click table (reader_id, session_id, article_id, timestamp[, published_at]).

    `timestamp` is UTC: datetimes, ISO-8601 strings or epoch milliseconds. Publish times come from
    the optional `published_at` column (first non-missing value per article) or from the
    `published_at` argument, a Series indexed by article id (it wins where both are given).
    """
    missing = set(CLICK_COLUMNS) - set(clicks.columns)
    if missing:
        raise ValueError(f"click table lacks columns {sorted(missing)}")
    timestamp = _epoch_ms(clicks["timestamp"])
    reader_codes, _ = pd.factorize(clicks["reader_id"], sort=True)
    session_codes = (
        clicks[["reader_id", "session_id"]].groupby(["reader_id", "session_id"], sort=True).ngroup()
    ).to_numpy(dtype=np.int64)
    article_codes, article_ids = pd.factorize(clicks["article_id"], sort=True)
    if (reader_codes < 0).any() or (article_codes < 0).any() or (session_codes < 0).any():
        raise ValueError("reader_id, session_id and article_id must not be missing")

    published = pd.Series(np.nan, index=pd.Index(article_ids))
    if "published_at" in clicks.columns:
        per_row = pd.Series(np.nan, index=clicks.index)
        known = clicks["published_at"].notna()
        if known.any():
            per_row[known] = _epoch_ms(clicks.loc[known, "published_at"]).astype(np.float64)
        first = per_row.groupby(article_codes).first()
        published.iloc[first.index.to_numpy()] = first.to_numpy()
    if published_at is not None:
        given = published_at[published_at.notna()]
        given = given[~given.index.duplicated(keep="last")]
        given_ms = pd.Series(_epoch_ms(given).astype(np.float64), index=given.index)
        common = published.index.intersection(given_ms.index)
        published.loc[common] = given_ms.loc[common].to_numpy()

    order = np.lexsort((np.arange(len(timestamp)), timestamp, session_codes))
    return ClickLog(
        reader=reader_codes.astype(np.int64)[order],
        session=session_codes[order],
        article=article_codes.astype(np.int64)[order],
        timestamp=timestamp[order],
        article_ids=np.asarray(article_ids),
        published_ms=published.to_numpy(dtype=np.float64),
    )


def read_click_log(path: Path, articles: Path | None = None) -> ClickLog:
    """A click table from CSV (optionally gzipped) or Parquet; `articles` an optional table of
    (article_id, published_at)."""
    clicks = _read_table(path)
    published = None
    if articles is not None:
        table = _read_table(articles)
        if not {"article_id", "published_at"} <= set(table.columns):
            raise ValueError(f"{articles} needs columns article_id and published_at")
        published = table.set_index("article_id")["published_at"]
    return click_log(clicks, published)


def _read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


G1_CLICK_COLUMNS = {
    "user_id": np.int64,
    "session_id": np.int64,
    "click_article_id": np.int64,
    "click_timestamp": np.int64,
}


def read_g1(folder: Path) -> ClickLog:
    """The Globo.com G1 files as they lie in `folder` (clicks/clicks_hour_*.csv.gz and
    articles_metadata_partial.csv, whose created_at_ts is the publish time)."""
    folder = Path(folder)
    files = sorted((folder / "clicks").glob("clicks_hour_*.csv.gz"))
    if not files:
        raise FileNotFoundError(f"no clicks/clicks_hour_*.csv.gz under {folder}")
    frames = [pd.read_csv(f, usecols=list(G1_CLICK_COLUMNS), dtype=G1_CLICK_COLUMNS) for f in files]
    raw = pd.concat(frames, ignore_index=True)
    clicks = pd.DataFrame(
        {
            "reader_id": raw["user_id"],
            "session_id": raw["session_id"],
            "article_id": raw["click_article_id"],
            "timestamp": raw["click_timestamp"],
        }
    )
    published = None
    metadata = folder / "articles_metadata_partial.csv"
    if metadata.exists():
        meta = pd.read_csv(metadata, usecols=["article_id", "created_at_ts"])
        published = meta.set_index("article_id")["created_at_ts"].astype(np.int64)
    return click_log(clicks, published)


# --------------------------------------------------------------------------------------------
# Folds


@dataclass(frozen=True)
class Pairs:
    """Consecutive clicks (source -> target) of one session; `timestamp` is the target's."""

    source: np.ndarray
    target: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def session_pairs(log: ClickLog) -> Pairs:
    """Every consecutive pair (a -> b) within a session, a != b, stamped with b's time."""
    same = log.session[1:] == log.session[:-1]
    source, target = log.article[:-1][same], log.article[1:][same]
    stamp = log.timestamp[1:][same]
    keep = source != target
    return Pairs(source=source[keep], target=target[keep], timestamp=stamp[keep])


def fold_starts(days: Iterable[str | pd.Timestamp], step_hours: int = 2) -> list[pd.Timestamp]:
    """t0 of every fold: each `step_hours` boundary of each UTC day, from 00:00."""
    if 24 % step_hours:
        raise ValueError("step_hours must divide 24")
    starts = []
    for day in days:
        midnight = _utc(day).floor("D")
        starts.extend(midnight + pd.Timedelta(hours=h) for h in range(0, 24, step_hours))
    return starts


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _ms(stamp: pd.Timestamp) -> int:
    return _utc(stamp).value // 1_000_000


@dataclass
class TrainingClicks:
    """The clicks a recommender may learn from at t0: timestamp in [t0 - train_days, t0).

    Arrays are sorted by session then time. `catalogue` holds the article codes clicked in the
    window (the only articles a list may hold), or only those of them that `candidates` (a boolean
    per article code) allows: the pipeline passes the site's recommendable articles.
    `fallback_order` is the catalogue by last-hour clicks, then window clicks, then ascending code;
    `fallback_rank[code]` an article's position in it (n_articles for articles outside the
    catalogue). Recommenders break ties of their own scores
    by ascending `tie_rank[code]`: the fallback rank with ties="popularity", the article code (so
    the original id order) with ties="id".
    """

    reader: np.ndarray
    session: np.ndarray
    article: np.ndarray
    timestamp: np.ndarray
    t0: pd.Timestamp
    n_articles: int
    article_ids: np.ndarray
    published_ms: np.ndarray
    ties: str = "popularity"
    candidates: np.ndarray | None = None
    catalogue: np.ndarray = field(init=False)
    window_clicks: np.ndarray = field(init=False)
    last_hour_clicks: np.ndarray = field(init=False)
    fallback_order: np.ndarray = field(init=False)
    fallback_rank: np.ndarray = field(init=False)
    tie_rank: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.n_articles
        self.window_clicks = np.bincount(self.article, minlength=n)
        recent = self.timestamp >= _ms(self.t0) - MS_PER_HOUR
        self.last_hour_clicks = np.bincount(self.article[recent], minlength=n)
        allowed = self.window_clicks > 0
        if self.candidates is not None:
            allowed &= np.asarray(self.candidates, dtype=bool)
        self.catalogue = np.flatnonzero(allowed)
        order = np.lexsort(
            (
                self.catalogue,
                -self.window_clicks[self.catalogue],
                -self.last_hour_clicks[self.catalogue],
            )
        )
        self.fallback_order = self.catalogue[order]
        self.fallback_rank = np.full(n, n, dtype=np.int64)
        self.fallback_rank[self.fallback_order] = np.arange(len(self.fallback_order))
        if self.ties == "popularity":
            self.tie_rank = self.fallback_rank
        elif self.ties == "id":
            self.tie_rank = np.arange(n, dtype=np.int64)
        else:
            raise ValueError(f"ties must be one of {TIES}, not {self.ties!r}")

    def __len__(self) -> int:
        return len(self.article)

    def in_catalogue(self) -> np.ndarray:
        mask = np.zeros(self.n_articles, dtype=bool)
        mask[self.catalogue] = True
        return mask

    def session_matrix(self) -> sparse.csr_matrix:
        """Binary sessions x articles (rows: every session code up to the largest in the window)."""
        rows = self.session
        shape = (int(rows.max()) + 1 if len(rows) else 0, self.n_articles)
        matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, self.article)), shape=shape)
        matrix.sum_duplicates()
        matrix.data[:] = 1
        return matrix

    def successor_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive (a -> b) within the window's part of each session, a != b."""
        same = self.session[1:] == self.session[:-1]
        source, target = self.article[:-1][same], self.article[1:][same]
        keep = source != target
        return source[keep], target[keep]


def training_clicks(
    log: ClickLog,
    t0: pd.Timestamp,
    train_days: float = 7,
    ties: str = "popularity",
    candidates: np.ndarray | None = None,
) -> TrainingClicks:
    end = _ms(t0)
    start = end - round(train_days * MS_PER_DAY)
    window = (log.timestamp >= start) & (log.timestamp < end)
    return TrainingClicks(
        reader=log.reader[window],
        session=log.session[window],
        article=log.article[window],
        timestamp=log.timestamp[window],
        t0=_utc(t0),
        n_articles=log.n_articles,
        article_ids=log.article_ids,
        published_ms=log.published_ms,
        ties=ties,
        candidates=candidates,
    )


def fold_pairs(pairs: Pairs, t0: pd.Timestamp, step_hours: float = 2) -> Pairs:
    """The pairs whose target click falls in [t0, t0 + step)."""
    start = _ms(t0)
    inside = (pairs.timestamp >= start) & (pairs.timestamp < start + int(step_hours * MS_PER_HOUR))
    return Pairs(source=pairs.source[inside], target=pairs.target[inside], timestamp=pairs.timestamp[inside])


# --------------------------------------------------------------------------------------------
# Ranking helpers


def top_k_sparse(
    scores: sparse.spmatrix, sources: np.ndarray, k: int, tiebreak: np.ndarray, with_scores: bool = False
):
    """Per row i, the columns of the k largest positive scores other than `sources[i]`, ties by
    ascending `tiebreak[column]`; NO_ARTICLE pads rows with fewer than k. With `with_scores`,
    also the (n, k) scores (0 in padded slots)."""
    n = scores.shape[0]
    coo = sparse.coo_matrix(scores)
    rows, cols, values = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    keep = (values > 0) & (cols != sources[rows])
    rows, cols, values = rows[keep], cols[keep], values[keep]
    if len(rows) > 4 * k * n:
        # Only entries at least as large as their row's k-th largest can make the list.
        rows, cols, values = _row_threshold(rows, cols, values, n, k)
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


def _row_threshold(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((-values, rows))
    sorted_rows, sorted_values = rows[order], values[order]
    starts = np.searchsorted(sorted_rows, np.arange(n), side="left")
    ends = np.searchsorted(sorted_rows, np.arange(n), side="right")
    kth = np.where(ends - starts >= k, sorted_values[np.minimum(starts + k - 1, len(values) - 1)], -np.inf)
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


# --------------------------------------------------------------------------------------------
# Recommenders


class Recommender:
    """fit(train, t0) on a window's clicks, then recommend(source codes, k) -> (n, k) article codes,
    best first, NO_ARTICLE for empty slots, never the source, only catalogue articles."""

    name = "recommender"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        raise NotImplementedError

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError


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


Embedder = Callable[[TrainingClicks], tuple[np.ndarray, np.ndarray]]


class EmbeddingRecommender(Recommender):
    """Any model that gives article vectors: `embed(train)` returns (article codes, vectors); the
    list for a is the other catalogue articles by cosine to a's vector, ties by `train.tie_rank`.
    With `freshness_half_life_days` the score is the project's own (cosine + 1) / 2 x
    0.5 ** (age in days / half-life), age from publish time to t0 (articles of unknown publish time
    count as fresh). Sources without a vector get an empty list (all fill).
    """

    def __init__(
        self, embed: Embedder, name: str = "embeddings", freshness_half_life_days: float | None = None
    ):
        self.embed = embed
        self.name = name
        self.freshness_half_life_days = freshness_half_life_days
        self.batch_rows = 1024

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        codes, vectors = self.embed(train)
        codes = np.asarray(codes, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(codes) != len(vectors):
            raise ValueError("embed() returned different numbers of codes and vectors")
        keep = train.in_catalogue()[codes]
        codes, vectors = codes[keep], vectors[keep]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.codes = codes
        self.unit = vectors / np.where(norms == 0, 1, norms)
        self.row_of = np.full(train.n_articles, -1, dtype=np.int64)
        self.row_of[codes] = np.arange(len(codes))
        self.tiebreak = train.tie_rank[codes]
        self.fresh = None
        if self.freshness_half_life_days is not None:
            age_days = np.clip((_ms(t0) - train.published_ms[codes]) / MS_PER_DAY, 0, None)
            fresh = np.power(0.5, age_days / self.freshness_half_life_days)
            self.fresh = np.where(np.isnan(fresh), 1.0, fresh).astype(np.float32)

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        source_ids = np.asarray(source_ids)
        out = np.full((len(source_ids), k), NO_ARTICLE, dtype=np.int64)
        rows = self.row_of[source_ids]
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), self.batch_rows):
            batch = known[start : start + self.batch_rows]
            scores = self.unit[rows[batch]] @ self.unit.T
            if self.fresh is not None:
                scores = (np.clip(scores, -1, 1) + 1) / 2 * self.fresh[None, :]
            scores[np.arange(len(batch)), rows[batch]] = -np.inf
            top = top_k_dense(scores, k, self.tiebreak)
            out[batch] = np.where(top >= 0, self.codes[np.maximum(top, 0)], NO_ARTICLE)
        return out


class ALSEmbedder:
    """The project's model: implicit ALS (`logic.training.train_article_embeddings`, which holds
    BLAS to one thread around building and fitting the model) on the window's clicks.

    With `filters` (a `sites.TrainingSettings`), the matrix is the project's own:
    `logic.interaction_matrix.build_interaction_matrix` with its dwell bounds, minimum readers per
    article, minimum articles and seconds per reader and daily decay. Without, it is a plain readers
    (or sessions, `rows="session"`) x articles matrix of every window click.

    Click logs have no reading time: the matrix counts page views (`signal: page_views`), so the
    project's confidence is log1p(views).
    """

    def __init__(self, rows: str = "reader", settings=None, filters=None):
        if rows not in ("reader", "session"):
            raise ValueError("rows must be 'reader' or 'session'")
        if filters is not None and rows != "reader":
            raise ValueError("the project's filters apply to readers x articles")
        self.rows = rows
        self.settings = settings
        self.filters = filters
        self.last_stats: dict = {}

    def __call__(self, train: TrainingClicks) -> tuple[np.ndarray, np.ndarray]:
        from article_rec_assets.logic.training import NotEnoughData, train_article_embeddings
        from article_rec_assets.sites import ModelSettings

        settings = self.settings or ModelSettings()
        data = self._project_matrix(train) if self.filters is not None else self._plain_matrix(train)
        try:
            embeddings = train_article_embeddings(data, settings)
        except NotEnoughData:
            return np.empty(0, dtype=np.int64), np.empty((0, settings.factors), dtype=np.float32)
        self.last_stats = {**data.stats, **embeddings.stats}
        return np.asarray(embeddings.article_ids, dtype=np.int64), embeddings.vectors

    def _plain_matrix(self, train: TrainingClicks):
        from article_rec_assets.logic.interaction_matrix import InteractionMatrix

        row_codes, row_ids = pd.factorize(train.reader if self.rows == "reader" else train.session)
        article_codes, article_ids = pd.factorize(train.article)
        matrix = sparse.csr_matrix(
            (np.ones(len(row_codes), dtype=np.float32), (row_codes, article_codes)),
            shape=(len(row_ids), len(article_ids)),
        )
        matrix.sum_duplicates()
        return InteractionMatrix(
            matrix=matrix,
            reader_ids=np.asarray(row_ids),
            article_ids=np.asarray(article_ids),
            as_of=train.t0,
            stats={"readers": len(row_ids), "articles": len(article_ids), "nonzeros": int(matrix.nnz)},
            signal="page_views",
        )

    def _project_matrix(self, train: TrainingClicks):
        from article_rec_assets.logic.interaction_matrix import build_interaction_matrix

        interactions = pd.DataFrame(
            {
                "reader_id": train.reader,
                "external_id": train.article,
                "day": pd.to_datetime(train.timestamp, unit="ms", utc=True).floor("D"),
                "page_views": 1,
                "engaged_seconds": 0.0,
            }
        )
        catalogue = pd.DataFrame(
            {"external_id": train.catalogue, "exclude_reason": pd.array([pd.NA] * len(train.catalogue))}
        )
        filters = self.filters.model_copy(update={"signal": "page_views"})
        return build_interaction_matrix(interactions, catalogue, train.t0, filters)


def _project_als() -> Recommender:
    """ALS as the project runs it: its interaction-matrix filters and decay, its model settings
    and its freshness-weighted cosine (sites' defaults)."""
    from article_rec_assets.sites import RecommendationSettings, TrainingSettings

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
    """The pipeline's article model (`logic.article_model`) with the sites' default settings."""
    from article_rec_assets.logic.article_model import ProjectModel, window_als
    from article_rec_assets.sites import ModelSettings, TrainingSettings

    settings = ModelSettings()
    return ProjectModel(settings, embed=lambda train: window_als(train, TrainingSettings(), settings))


MODELS: dict[str, Callable[[], Recommender]] = {
    **BASELINES,
    "project": _project_model,
    "als": _project_als,
    "als-readers": lambda: EmbeddingRecommender(ALSEmbedder("reader"), name="ALS (reader x article)"),
    "als-sessions": lambda: EmbeddingRecommender(ALSEmbedder("session"), name="ALS (session x article)"),
}


# --------------------------------------------------------------------------------------------
# Metrics and the replay


@dataclass(frozen=True)
class FoldResult:
    recommender: str
    day: str
    t0: pd.Timestamp
    pairs: int
    hits: int
    reciprocal_rank: float  # sums over the fold's pairs
    ndcg: float
    fill_slots: int
    filled_pairs: int
    cold_sources: int  # pairs whose source was not clicked in the training window
    covered: int
    catalogue: int
    fit_seconds: float
    recommend_seconds: float


def rank_metrics(lists: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: hit (target in the list), reciprocal rank and NDCG (0 when missed)."""
    match = lists == targets[:, None]
    hit = match.any(axis=1)
    rank = np.argmax(match, axis=1) + 1
    reciprocal = np.where(hit, 1.0 / rank, 0.0)
    ndcg = np.where(hit, 1.0 / np.log2(rank + 1), 0.0)
    return hit, reciprocal, ndcg


def check_lists(lists: np.ndarray, sources: np.ndarray, train: TrainingClicks, name: str) -> None:
    """Refuse lists that hold the source, a duplicate, or an article outside the catalogue."""
    listed = lists >= 0
    if (listed & ~train.in_catalogue()[np.maximum(lists, 0)]).any():
        raise ValueError(f"{name} listed an article not clicked in the training window")
    if ((lists == sources[:, None]) & listed).any():
        raise ValueError(f"{name} recommended an article for itself")
    ordered = np.sort(np.where(listed, lists, -np.arange(1, lists.shape[1] + 1)), axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise ValueError(f"{name} listed an article twice")


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
) -> pd.DataFrame:
    """Replay `log` over `days`: one row per (fold, recommender) of FoldResult fields."""
    pairs = session_pairs(log)
    rows: list[FoldResult] = []
    for t0 in fold_starts(days, step_hours):
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


def summarize(folds: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Per day and in total, per recommender (in first-seen order): micro-averaged metrics over
    pairs, coverage averaged over folds, fill shares over pairs / slots, mean seconds per fold."""
    if folds.empty:
        return pd.DataFrame()
    total = folds.assign(day="total")
    frame = pd.concat([folds, total], ignore_index=True)
    grouped = frame.groupby(["day", "recommender"], sort=False)
    sums = grouped[
        ["pairs", "hits", "reciprocal_rank", "ndcg", "fill_slots", "filled_pairs", "cold_sources"]
    ].sum()
    means = grouped[["fit_seconds", "recommend_seconds"]].mean()
    frame["coverage"] = frame["covered"] / frame["catalogue"].clip(lower=1)
    coverage = frame.groupby(["day", "recommender"], sort=False)["coverage"].mean()
    pairs = sums["pairs"].clip(lower=1)
    out = pd.DataFrame(
        {
            "pairs": sums["pairs"],
            f"HR@{k}": sums["hits"] / pairs,
            f"MRR@{k}": sums["reciprocal_rank"] / pairs,
            f"NDCG@{k}": sums["ndcg"] / pairs,
            "coverage": coverage,
            "fallback share": sums["fill_slots"] / (pairs * k),
            "pairs filled": sums["filled_pairs"] / pairs,
            "cold sources": sums["cold_sources"] / pairs,
            "fit s": means["fit_seconds"],
            "rec s": means["recommend_seconds"],
            "folds": grouped.size(),
        }
    )
    return out.reset_index()


def markdown_table(summary: pd.DataFrame) -> str:
    """One Markdown table of a summary's rows (all columns but `day`)."""
    columns = [c for c in summary.columns if c != "day"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in summary[columns].itertuples(index=False):
        cells = []
        for name, value in zip(columns, row, strict=True):
            if name in ("pairs", "folds"):
                cells.append(f"{int(value):,}")
            elif name.endswith(" s"):
                cells.append(f"{value:.2f}")
            elif isinstance(value, float):
                cells.append("nan" if math.isnan(value) else f"{value:.4f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

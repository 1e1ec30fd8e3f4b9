"""The click log every recommender learns from: article, reader and session ids encoded once into
dense integer codes, sorted by session and time; and the training clicks of a fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
CLICK_COLUMNS = ("reader_id", "session_id", "article_id", "timestamp")
NO_ARTICLE = -1  # an empty list slot
TIES = ("popularity", "id")  # how recommenders order articles of equal score


@dataclass(frozen=True)
class ClickLog:
    """A click log with dense integer codes, sorted by session then time.

    `article_ids[code]` is the original id of an article code; `published_ms[code]` its publish
    time in epoch milliseconds (NaN when unknown). Sessions are told apart by (reader, session).
    """

    # Codes are int32 (`code_dtype`): a large site's week is 35M clicks, and every array of them
    # is held twice (the log and a training window of it). Arithmetic on codes casts to int64.
    reader: np.ndarray  # codes
    session: np.ndarray  # codes of (reader_id, session_id)
    article: np.ndarray  # codes
    timestamp: np.ndarray  # int64 epoch milliseconds, UTC
    article_ids: np.ndarray
    published_ms: np.ndarray  # float64, NaN when unknown

    @property
    def n_articles(self) -> int:
        return len(self.article_ids)

    def __len__(self) -> int:
        return len(self.article)

    @cached_property
    def next_clicks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, b's timestamp) for every click b right after a in one session, a != b (computed
        once: the ranker's label windows each take theirs from it)."""
        return _session_pairs(self.session, self.article, self.timestamp, 1)


def _pair_mask(session: np.ndarray, article: np.ndarray, distance: int) -> np.ndarray:
    """Over clicks 0 .. len - distance - 1: whether the click `distance` later is in the same
    session and on another article (sorted by session then time: the pair a -> b)."""
    d = distance
    same = session[d:] == session[:-d]
    same &= article[d:] != article[:-d]
    return same


def _session_pairs(
    session: np.ndarray, article: np.ndarray, timestamp: np.ndarray, distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, b's timestamp) of `_pair_mask`'s pairs, the codes as int64 (keys a * n + b)."""
    d, mask = distance, _pair_mask(session, article, distance)
    return article[:-d][mask].astype(np.int64), article[d:][mask].astype(np.int64), timestamp[d:][mask]


def code_dtype(n: int) -> type[np.signedinteger]:
    """int32 for codes below n, unless n needs int64."""
    return np.int32 if n < 2**31 else np.int64


def _epoch_ms(values: pd.Series) -> np.ndarray:
    """Epoch milliseconds from datetimes (naive ones taken as UTC), ISO strings or epoch-ms numbers."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        if values.isna().any():
            raise ValueError("timestamps must not be missing")
        return values.dt.tz_convert("UTC").dt.as_unit("ms").array.asi8.copy()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if values.isna().any():
            raise ValueError("timestamps must not be missing")
        return values.to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    if stamps.isna().any():
        raise ValueError("timestamps must not be missing")
    return stamps.dt.as_unit("ms").astype("int64").to_numpy()


def _sorted_categories(column: pd.Series) -> bool:
    """A categorical column whose categories are in text order (codes then order as the text)."""
    dtype = column.dtype
    return isinstance(dtype, pd.CategoricalDtype) and dtype.categories.is_monotonic_increasing


def _dense_codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """`pd.factorize(column, sort=True)` of a column with sorted categories, from its codes (no
    hashing of the text): codes 0.. over the categories present, in text order; -1 where missing."""
    codes = column.cat.codes.to_numpy().astype(np.int64)
    present = np.zeros(len(column.cat.categories) + 1, dtype=bool)
    present[codes + 1] = True  # slot 0: missing
    dense = np.cumsum(present[1:]) - 1
    return np.where(codes >= 0, dense[codes], -1), column.cat.categories[present[1:]]


def _by_session_then_time(session: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """The order by session, then time, then position: one stable sort of one int64 key where
    the codes and the time span fit in it (a week of a large site: 35M clicks), else a lexsort."""
    if not len(session):
        return np.zeros(0, dtype=np.int64)
    first, span = int(timestamp.min()), int(timestamp.max()) - int(timestamp.min()) + 1
    if (int(session.max()) + 1) * span < 2**62:
        return np.argsort(session * span + (timestamp - first), kind="stable")
    return np.lexsort((np.arange(len(timestamp)), timestamp, session))


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
    if all(_sorted_categories(clicks[name]) for name in ("reader_id", "session_id", "article_id")):
        reader_codes, _ = _dense_codes(clicks["reader_id"])
        session_codes, _ = _dense_codes(clicks["session_id"])
        pair = reader_codes * len(clicks["session_id"].cat.categories) + session_codes
        if len(pair) and (pair[1:] >= pair[:-1]).all():  # grouped already (interaction_clicks)
            session_codes = np.cumsum(np.r_[0, pair[1:] != pair[:-1]]).astype(np.int64)
        else:
            session_codes = np.unique(pair, return_inverse=True)[1].ravel().astype(np.int64)
        del pair
        article_codes, article_ids = _dense_codes(clicks["article_id"])
    else:
        reader_codes, _ = pd.factorize(clicks["reader_id"], sort=True)
        session_codes = (
            clicks[["reader_id", "session_id"]]
            .groupby(["reader_id", "session_id"], sort=True, observed=True)
            .ngroup()
        ).to_numpy(dtype=np.int64)
        article_codes, article_ids = pd.factorize(clicks["article_id"], sort=True)
    article_ids = pd.Index(np.asarray(article_ids, dtype=object))  # plain text, from categories too
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

    order = _by_session_then_time(session_codes, timestamp)
    return ClickLog(
        reader=reader_codes.astype(code_dtype(len(reader_codes)), copy=False)[order],
        session=session_codes.astype(code_dtype(len(session_codes)), copy=False)[order],
        article=article_codes.astype(code_dtype(len(article_ids)), copy=False)[order],
        timestamp=timestamp[order],
        article_ids=np.asarray(article_ids),
        published_ms=published.to_numpy(dtype=np.float64),
    )


def as_utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def epoch_ms_of(stamp: pd.Timestamp) -> int:
    return as_utc(stamp).value // 1_000_000


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
    # The log and the days these clicks were taken from (`training_clicks`): the ranker's label
    # windows take the days before their own start from it.
    log: ClickLog | None = field(default=None, repr=False, compare=False)
    train_days: float | None = None
    catalogue: np.ndarray = field(init=False)
    window_clicks: np.ndarray = field(init=False)
    last_hour_clicks: np.ndarray = field(init=False)
    fallback_order: np.ndarray = field(init=False)
    fallback_rank: np.ndarray = field(init=False)
    tie_rank: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.n_articles
        self.window_clicks = np.bincount(self.article, minlength=n)
        recent = self.timestamp >= epoch_ms_of(self.t0) - MS_PER_HOUR
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
        source, target, _ = self.session_pairs()
        return source, target

    def session_pairs(self, distance: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, b's timestamp) for each click b `distance` clicks after a in the window's part of
        one session, a != b."""
        return _session_pairs(self.session, self.article, self.timestamp, distance)


@dataclass(frozen=True)
class PairSums:
    """The session pairs at one distance (b clicked that many clicks after a in one session,
    a != b), grouped by pair: `keys` are the distinct pairs a * n + b, sorted, and `stamp` the
    occurrences' times of b, ordered by pair (each pair's from `starts[i]` on). Any weighting of
    the occurrences sums by pair in one pass, over the one sorted key array (where a sparse
    matrix per weighting would copy every occurrence). The blend and the ranker's signals share
    them (`ranker.Signals.of`), and let them go once fitted."""

    keys: np.ndarray  # int64, sorted, distinct
    starts: np.ndarray  # int64: where each key's occurrences start in `stamp`
    stamp: np.ndarray  # int64 epoch ms of b's click, per occurrence, by key
    n: int  # articles: a = keys // n, b = keys % n

    @classmethod
    def of(cls, train: TrainingClicks, distance: int = 1) -> PairSums:
        """The pairs of `train.session_pairs(distance)`, grouped (built lean: a large site's week
        has 25M pairs at distance 1, 200 MB per array of them)."""
        d, article = distance, train.article
        same = _pair_mask(train.session, article, d)
        keys = article[:-d][same].astype(np.int64)
        keys *= train.n_articles
        keys += article[d:][same]
        stamp = train.timestamp[d:][same]
        del same
        order = np.argsort(keys, kind="stable")  # stable: a pair's occurrences in click order
        keys, stamp = keys[order], stamp[order]
        del order
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
        return cls(keys[starts], starts, stamp, train.n_articles)

    def sums(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Per distinct pair, the occurrences' count (no weights) or their `weights` (one per
        occurrence, in `stamp`'s order) summed."""
        if weights is None:
            return np.diff(np.r_[self.starts, len(self.stamp)]).astype(np.float64)
        if not len(self.starts):
            return np.zeros(0)
        return np.add.reduceat(np.asarray(weights, dtype=np.float64), self.starts)

    def decayed(self, end: int, tau_hours: float) -> np.ndarray:
        """Per distinct pair, its occurrences counted exp(-age of b's click at `end` / tau)."""
        return self.sums(np.exp(-(end - self.stamp) / MS_PER_HOUR / tau_hours))

    def matrix(self, values: np.ndarray) -> sparse.csr_matrix:
        """The n x n matrix of a value per distinct pair (row a, column b): the keys are sorted
        and distinct, so they are its CSR layout as they are."""
        index = np.int32 if max(len(self.keys), self.n) < 2**31 else np.int64
        rows, columns = np.divmod(self.keys, self.n)
        indptr = np.zeros(self.n + 1, dtype=index)
        np.cumsum(np.bincount(rows, minlength=self.n), out=indptr[1:])
        matrix = sparse.csr_matrix((values, columns.astype(index), indptr), shape=(self.n, self.n))
        matrix.has_canonical_format = True
        return matrix


def training_clicks(
    log: ClickLog,
    t0: pd.Timestamp,
    train_days: float = 7,
    ties: str = "popularity",
    candidates: np.ndarray | None = None,
) -> TrainingClicks:
    end = epoch_ms_of(t0)
    start = end - round(train_days * MS_PER_DAY)
    window = (log.timestamp >= start) & (log.timestamp < end)
    return TrainingClicks(
        reader=log.reader[window],
        session=log.session[window],
        article=log.article[window],
        timestamp=log.timestamp[window],
        t0=as_utc(t0),
        n_articles=log.n_articles,
        article_ids=log.article_ids,
        published_ms=log.published_ms,
        ties=ties,
        candidates=candidates,
        log=log,
        train_days=train_days,
    )

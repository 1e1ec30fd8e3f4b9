"""A learned ranker over the blend's candidates: "readers of this article also read", ordered by
LightGBM's LambdaRank.

Candidates: for a source article a, the `candidates` best articles of the recency successor blend
(`recommenders/blend.py`), whose score already unites the sources a list can come from: successors
within sessions, backward neighbours, two clicks apart, implicit's co-visitation, and the last
minutes' most read (so brand-new articles with reads are candidates everywhere).

Features of a pair (a, b), all computed from the clicks before the time they describe (FEATURES):
the blend's score, its rank and its share of the row's best; successor weight a -> b decayed over
three time scales and counted plain, b -> a, a -> x -> b, co-visitation, a -> b's share of a's
successors; b's reads over the last 15 minutes, hour, 6 hours and day and their trend, its age;
a's own reads and age, and how much older or newer b is; where in sessions b and a are read (the
shares of b's reads that open and that end a session, a's share that end one) and how deep (the
mean number of clicks before them in their sessions, and the gap).

Training: the within-session next clicks a -> b of the `label_windows` 2-hour windows before t0.
A window's examples (`label_examples`) take their candidates and features from the session days
of clicks before that window's start (never from the window itself), so they are built once per
window and stored; the label of a candidate is how many of the window's pairs went a -> b, and a
source weighs as much as its pairs (LambdaRank's query weight is the sum of its rows' weights).
The retrain every two hours therefore learns how the blend's signals turn into the next click on
this site, now, and serves with the signals of all clicks before t0. A busy window's sources are
sampled down to `max_sources_per_window` (seeded by the window: reruns are identical).

Serving: the booster's score, less `spread_weight` x log(1 + the number of the catalogue's top
lists the candidate is in), through a sigmoid into (0, 1); for the articles read within
`ranked_hours` (the sources of almost every next click), the others keeping the blend's order.

Too few labelled sources (a quiet site, the first hours of its history): the blend serves alone and
`stats` says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from article_rec_assets.recommenders.blend import RecencySuccessorBlend
from article_rec_assets.recommenders.click_log import MS_PER_HOUR, NO_ARTICLE, PairSums, TrainingClicks
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets.settings.sites import BlendSettings, RankerSettings

if TYPE_CHECKING:
    import lightgbm

# The features by group (RankerSettings.without_features leaves groups out, for the ablation).
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "blend": ("blend_score", "blend_rank", "blend_share_of_best"),
    "successors": (
        "successor_short",
        "successor_long",
        "successor_day",
        "successor_count",
        "successor_share",
        "backward_long",
        "two_apart_long",
    ),
    "covisitation": ("covisitation",),
    "popularity": ("reads_15m", "reads_1h", "reads_6h", "reads_24h", "reads_trend"),
    "freshness": ("age_hours", "source_age_hours", "age_gap_hours"),
    "source": ("source_reads_1h", "source_reads_24h", "source_successors"),
    # Where in sessions an article is read: opening them (arrivals from outside), or ending them.
    "session": ("entry_share", "exit_share", "source_exit_share"),
    # How deep into sessions an article is read on average (clicks before it in its session).
    "order": ("mean_position", "source_mean_position", "position_gap"),
}
FEATURES = tuple(name for names in FEATURE_GROUPS.values() for name in names)
# The article signals read at the candidate (named as the signal) and at the source
# (`source_` + the signal's name).
CANDIDATE_ARTICLE_FEATURES = (
    "reads_15m",
    "reads_1h",
    "reads_6h",
    "reads_24h",
    "reads_trend",
    "age_hours",
    "entry_share",
    "exit_share",
    "mean_position",
)
SOURCE_ARTICLE_FEATURES = ("reads_1h", "reads_24h", "successors", "age_hours", "exit_share", "mean_position")
SERVE_BATCH_SOURCES = 1024  # sources scored at a time: bounds the feature matrix in memory


def _sorted_keys(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """A sparse matrix as sorted keys row * n_columns + column and their values, for lookups."""
    matrix = sparse.csr_matrix(matrix)
    matrix.sum_duplicates()
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices.astype(np.int64), matrix.data.astype(np.float64)


@dataclass
class _PairTable:
    """Values of one articles x articles matrix at arbitrary (row, column) pairs."""

    keys: np.ndarray
    values: np.ndarray
    n: int

    @classmethod
    def of(cls, matrix: sparse.csr_matrix) -> _PairTable:
        keys, values = _sorted_keys(matrix)
        return cls(keys, values, matrix.shape[1])

    def positions(self, wanted: np.ndarray) -> np.ndarray:
        """Per wanted key (row * n + column): its position in the table, -1 where it is absent."""
        if not len(self.keys):
            return np.full(len(wanted), -1, dtype=np.int64)
        position = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where(self.keys[position] == wanted, position, -1)

    def values_at(self, positions: np.ndarray) -> np.ndarray:
        """The values at `positions` (0 where a position is -1)."""
        if not len(self.values):
            return np.zeros(len(positions))
        return np.where(positions >= 0, self.values[np.maximum(positions, 0)], 0.0)


def _transposed(table: _PairTable) -> _PairTable:
    """The table of (b, a) for each (a, b)."""
    keys = (table.keys % table.n) * table.n + table.keys // table.n
    order = np.argsort(keys, kind="stable")
    return _PairTable(keys[order], table.values[order], table.n)


def _session_shares(train: TrainingClicks) -> dict[str, np.ndarray]:
    """Per article, the share of its clicks that open their session and that end it, and how many
    clicks of their session come before them on average."""
    n = train.n_articles
    if not len(train):
        return {name: np.zeros(n) for name in ("entry_share", "exit_share", "mean_position")}
    change = train.session[1:] != train.session[:-1]
    first, last = np.r_[True, change], np.r_[change, True]
    del change
    starts = np.flatnonzero(first)
    clicks = np.maximum(np.bincount(train.article, minlength=n), 1).astype(np.float64)
    shares = {
        "entry_share": np.bincount(train.article[first], minlength=n) / clicks,
        "exit_share": np.bincount(train.article[last], minlength=n) / clicks,
    }
    del first, last
    # A click's position in its session is its index less its session's first index: summed
    # per article as two sums, never a position array beside the index arrays (exact: the sums
    # stay far below 2**53).
    positions = np.bincount(train.article, weights=np.arange(len(train), dtype=np.float64), minlength=n)
    session_start = np.repeat(starts.astype(np.float64), np.diff(np.r_[starts, len(train)]))
    positions -= np.bincount(train.article, weights=session_start, minlength=n)
    shares["mean_position"] = positions / clicks
    return shares


@dataclass
class Signals:
    """Everything the features read, as of `train.t0`: the fitted blend and the pair and article
    signals beside it."""

    blend: RecencySuccessorBlend
    pairs: dict[str, _PairTable]
    article: dict[str, np.ndarray]  # per article code
    tie_rank: np.ndarray

    @classmethod
    def of(cls, train: TrainingClicks, blend_settings: BlendSettings) -> Signals:
        # The pairs one and two clicks apart, grouped once for the blend and the tables here, and
        # let go when this returns (16 bytes per occurrence).
        pair_sums = {d: PairSums.of(train, d) for d in (1, 2)}
        blend = RecencySuccessorBlend(blend_settings)
        blend.fit(train, train.t0, pair_sums)
        end = train.t0.value // 1_000_000
        scale = blend.time_scale  # quiet sites: longer memories, as in the blend
        forward, two_apart = pair_sums[1], pair_sums[2]
        n = train.n_articles
        count = _PairTable(forward.keys, forward.sums(), n)
        forward_long = _PairTable(forward.keys, forward.decayed(end, 3.0 * scale), n)
        source = forward.keys // n
        out_count = np.bincount(source, weights=count.values, minlength=n)
        pairs = {
            "successor_short": _PairTable(forward.keys, forward.decayed(end, 0.5 * scale), n),
            "successor_long": forward_long,
            "successor_day": _PairTable(forward.keys, forward.decayed(end, 24.0 * scale), n),
            "successor_count": count,
            "successor_share": _PairTable(forward.keys, count.values / out_count[source], n),
            "backward_long": _transposed(forward_long),
            "two_apart_long": _PairTable(two_apart.keys, two_apart.decayed(end, 3.0 * scale), n),
            "covisitation": _PairTable.of(blend.covisitation),
        }
        reads = {}
        for name, minutes in (("15m", 15), ("1h", 60), ("6h", 360), ("24h", 1440)):
            recent = train.timestamp >= end - round(minutes * scale * 60_000)
            reads[name] = np.bincount(train.article[recent], minlength=train.n_articles).astype(np.float64)
        age = (end - train.published_ms) / MS_PER_HOUR  # NaN when the publish time is unknown
        article = {
            "reads_15m": reads["15m"],
            "reads_1h": reads["1h"],
            "reads_6h": reads["6h"],
            "reads_24h": reads["24h"],
            "reads_trend": (reads["1h"] + 1) / (reads["6h"] / 6 + 1),
            "age_hours": age,
            "successors": out_count,
            **_session_shares(train),
        }
        return cls(blend, pairs, article, train.tie_rank)

    def candidates(self, sources: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of the source in `sources`, candidate code, its blend score and rank) of the blend's
        m best candidates of each source (never the source)."""
        lists, scores = top_k_sparse(
            self.blend.score_rows(sources), sources, m, self.tie_rank, with_scores=True
        )
        row, rank = np.nonzero(lists != NO_ARTICLE)
        return row, lists[row, rank], scores[row, rank], rank

    def features(self, sources: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of the source, candidate, feature matrix in FEATURES order) for `sources`."""
        row, candidate, score, rank = self.candidates(sources, m)
        source = sources[row]
        best = np.zeros(len(sources))
        np.maximum.at(best, row, score)
        a = self.article
        wanted = source.astype(np.int64) * len(self.tie_rank) + candidate.astype(np.int64)
        found: dict[int, np.ndarray] = {}  # positions by key array: tables sharing keys search once
        for table in self.pairs.values():
            if id(table.keys) not in found:
                found[id(table.keys)] = table.positions(wanted)

        # Each column computed as it is written (one float64 column at a time, not all of them).
        def of_candidate(name: str) -> Callable[[], np.ndarray]:
            return lambda: a[name][candidate]

        def of_source(name: str) -> Callable[[], np.ndarray]:
            return lambda: a[name][source]

        def gap(name: str) -> Callable[[], np.ndarray]:
            return lambda: a[name][candidate] - a[name][source]

        columns: dict[str, Callable[[], np.ndarray]] = {
            "blend_score": lambda: score,
            "blend_rank": lambda: rank,
            "blend_share_of_best": lambda: score / np.where(best[row] > 0, best[row], 1.0),
            **{name: partial(table.values_at, found[id(table.keys)]) for name, table in self.pairs.items()},
            **{name: of_candidate(name) for name in CANDIDATE_ARTICLE_FEATURES},
            **{f"source_{name}": of_source(name) for name in SOURCE_ARTICLE_FEATURES},
            "age_gap_hours": gap("age_hours"),
            "position_gap": gap("mean_position"),
        }
        # Column by column into one float32 matrix (column-major: LightGBM reads it as it is).
        matrix = np.empty((len(row), len(FEATURES)), dtype=np.float32, order="F")
        for i, name in enumerate(FEATURES):
            matrix[:, i] = columns[name]()
        return row, candidate, matrix


def count_pairs(
    source: np.ndarray, target: np.ndarray, stamp: np.ndarray, start: int, end: int
) -> pd.DataFrame:
    """Within-session next clicks (a -> b, a != b) whose b falls in [start, end) ms, counted
    (`source`, `target`, `pairs`)."""
    keep = (stamp >= start) & (stamp < end)
    pairs = pd.DataFrame({"source": source[keep], "target": target[keep]})
    return pairs.value_counts().rename("pairs").reset_index()


def label_window_starts(t0: pd.Timestamp, settings: RankerSettings) -> list[pd.Timestamp]:
    """Starts of the `label_windows` windows before t0 that a retrain at t0 learns from, oldest first."""
    hours = pd.Timedelta(hours=settings.window_hours)
    return [t0 - back * hours for back in range(settings.label_windows, 0, -1)]


@dataclass
class RankerExamples:
    """The ranker's labelled examples of one window: its sources' candidates and their features as
    of the window's start (from the clicks before it), labelled with the window's next clicks.
    Code-free (features, labels, query sizes and weights only), so a window's examples are built
    once, stored, and read by every retrain that learns from that window."""

    window_start: pd.Timestamp
    features: np.ndarray  # rows x FEATURES, float32
    labels: np.ndarray  # per row: the pairs a -> b of the window, capped at max_label
    group_sizes: np.ndarray  # rows per source (a LambdaRank query), in row order
    weights: np.ndarray  # per row: its query's pairs / its rows
    pairs: int  # the window's pairs whose target was among its source's candidates
    all_pairs: int  # the window's pairs of the (sampled) sources
    # What built them (`article_model.window_examples` sets both): stored examples of another fit
    # version or other model settings are rebuilt, not learned from.
    version: str | None = None
    settings: dict | None = None

    def __len__(self) -> int:
        return len(self.labels)


def label_examples(
    history: TrainingClicks,
    pairs: pd.DataFrame,
    settings: RankerSettings,
    blend: BlendSettings,
    signals: Signals | None = None,
) -> RankerExamples | None:
    """Examples of the window starting at `history.t0`: `pairs` (source, target, pairs: its
    within-session next clicks, in `history`'s article codes) labelled over the candidates and
    features of `signals` (the signals of `history`, built here unless given). None when no pair's
    target was a candidate."""
    start = history.t0
    if not len(pairs):
        return None
    if signals is None:
        signals = Signals.of(history, blend)
    sources = np.unique(pairs["source"].to_numpy(dtype=np.int64))
    if len(sources) > settings.max_sources_per_window:
        # A busy site: a seeded sample of the sources (their weights still count their pairs),
        # so LambdaRank's rows and time stay bounded; the same window draws the same sample.
        rng = np.random.default_rng(start.value // 1_000_000)
        sources = np.sort(rng.choice(sources, settings.max_sources_per_window, replace=False))
        pairs = pairs[pairs["source"].isin(sources)]
    row, candidate, matrix = signals.features(sources, settings.candidates)
    source = sources[row]
    n = history.n_articles
    counted = pd.Series(
        pairs["pairs"].to_numpy(), index=pairs["source"].to_numpy() * n + pairs["target"].to_numpy()
    )
    labels = counted.reindex(source * n + candidate, fill_value=0).to_numpy(dtype=np.int64)
    labelled_rows = pd.Series(labels).groupby(row).transform("sum").to_numpy()
    keep = labelled_rows > 0  # sources none of whose pairs is among the candidates teach nothing
    row, matrix, labels = row[keep], matrix[keep], labels[keep]
    if not len(row):
        return None
    # Rows arrive grouped by source (top_k_sparse's order); a query weighs its pairs.
    sizes = np.bincount(row)[np.unique(row)]
    query_pairs = np.bincount(row, weights=labels)[np.unique(row)]
    weights = np.repeat(query_pairs / sizes, sizes)
    return RankerExamples(
        window_start=start,
        features=matrix,
        labels=np.minimum(labels, settings.max_label).astype(np.int32),
        group_sizes=sizes,
        weights=weights,
        pairs=int(labels.sum()),
        all_pairs=int(pairs["pairs"].sum()),
    )


@dataclass
class LearnedRanker:
    """LambdaRank over the blend's candidates (see the module docstring). `booster` is None when
    there were too few labelled sources: then the blend's own scores serve."""

    signals: Signals
    booster: lightgbm.Booster | None
    settings: RankerSettings
    columns: np.ndarray  # the FEATURES columns the booster reads
    # Per article: in how many of the catalogue's top lists the booster alone puts it (the spread).
    list_counts: np.ndarray | None = None
    stats: dict[str, float | str] = field(default_factory=dict)

    def score_rows(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        """Scores in (0, 1) of each source's candidates (one row per source), 0 elsewhere: the
        booster's, less `spread_weight` x log(1 + the candidate's list count)."""
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if self.booster is None:
            return self.signals.blend.score_rows(source_ids)
        return _sigmoid(self._predictions(source_ids), self._penalty())

    def ranks(self, train: TrainingClicks, source_ids: np.ndarray) -> np.ndarray:
        """Per source: whether the booster orders its list (read in the last `ranked_hours`,
        stretched by the blend's time scale), not the blend alone."""
        if self.settings.ranked_hours is None:
            return np.ones(len(source_ids), dtype=bool)
        hours = self.settings.ranked_hours * self.signals.blend.time_scale
        recent = train.timestamp >= train.t0.value // 1_000_000 - round(hours * MS_PER_HOUR)
        read = np.bincount(train.article[recent], minlength=train.n_articles) > 0
        return read[np.asarray(source_ids, dtype=np.int64)]

    def score_lists(self, source_ids: np.ndarray, catalogue: np.ndarray) -> sparse.csr_matrix:
        """`score_rows` of `source_ids`, which hold the `catalogue`, in one pass of the booster:
        the catalogue's rows give the list counts of the spread penalty on the way."""
        source_ids = np.asarray(source_ids, dtype=np.int64)
        if self.booster is None:
            return self.signals.blend.score_rows(source_ids)
        predictions = self._predictions(source_ids)
        if self.settings.spread_weight > 0:
            rows = np.flatnonzero(np.isin(source_ids, catalogue))
            alone = _sigmoid(predictions[rows], None)
            lists = top_k_sparse(alone, source_ids[rows], self.settings.list_length, self.signals.tie_rank)
            listed = lists[lists != NO_ARTICLE]
            self.list_counts = np.bincount(listed, minlength=predictions.shape[1]).astype(np.float64)
        return _sigmoid(predictions, self._penalty())

    def _penalty(self) -> np.ndarray | None:
        if self.list_counts is None or self.settings.spread_weight <= 0:
            return None
        return self.settings.spread_weight * np.log1p(self.list_counts)

    def _predictions(self, source_ids: np.ndarray) -> sparse.csr_matrix:
        """The booster's raw output for each source's candidates (explicit entries, one row per source)."""
        n = self.signals.blend.scores.shape[1]
        parts = []
        for start in range(0, len(source_ids), SERVE_BATCH_SOURCES):
            batch = source_ids[start : start + SERVE_BATCH_SOURCES]
            row, candidate, matrix = self.signals.features(batch, self.settings.candidates)
            if len(self.columns) < matrix.shape[1]:  # an ablation: some features left out
                matrix = matrix[:, self.columns]
            predicted = self.booster.predict(matrix, num_threads=self.settings.threads) if len(row) else []
            predicted = np.asarray(predicted, dtype=np.float64)
            parts.append(sparse.csr_matrix((predicted, (row, candidate)), shape=(len(batch), n)))
        return sparse.vstack(parts).tocsr() if parts else sparse.csr_matrix((0, n))


def _sigmoid(predictions: sparse.csr_matrix, penalty: np.ndarray | None) -> sparse.csr_matrix:
    """sigmoid(prediction - penalty[candidate]) at each explicit entry: a score in (0, 1)."""
    scores = predictions.copy()
    values = scores.data if penalty is None else scores.data - penalty[scores.indices]
    scores.data = 1.0 / (1.0 + np.exp(-values))
    return scores


def fit_ranker(
    train: TrainingClicks,
    settings: RankerSettings,
    blend: BlendSettings,
    examples: Sequence[RankerExamples],
) -> LearnedRanker:
    """Fit LambdaRank on the examples of the label windows before t0 (`examples`, built once per
    window: `label_examples`), and keep the signals of all clicks before t0 to serve with."""
    import lightgbm  # here, not at import: every Dagster process loads this module, few train

    started = time.perf_counter()
    windows = [w for w in examples if w is not None and len(w)]
    queries = int(sum(len(w.group_sizes) for w in windows))
    stats: dict[str, float | str] = {
        "ranker_label_windows": len(windows),
        "ranker_queries": queries,
        "ranker_rows": int(sum(len(w.labels) for w in windows)),
        "ranker_candidate_recall": round(
            sum(w.pairs for w in windows) / max(sum(w.all_pairs for w in windows), 1), 4
        ),
    }
    columns = feature_columns(settings)
    signals = Signals.of(train, blend)
    signalled = time.perf_counter()
    stats["ranker_signals_seconds"] = round(signalled - started, 3)
    booster = None
    if queries < settings.min_queries:
        stats["ranker"] = f"blend alone: {queries} labelled sources, fewer than {settings.min_queries}"
    else:
        booster = _train_booster(lightgbm, settings, windows, columns)
        stats["ranker"] = f"LambdaRank, {settings.rounds} rounds on {queries} labelled sources"
    stats["ranker_fit_seconds"] = round(time.perf_counter() - signalled, 3)
    return LearnedRanker(signals=signals, booster=booster, settings=settings, columns=columns, stats=stats)


def _train_booster(
    lightgbm, settings: RankerSettings, windows: Sequence[RankerExamples], columns: np.ndarray
) -> lightgbm.Booster:
    """LambdaRank on the windows' examples (queries weighted by their pairs)."""
    data = lightgbm.Dataset(
        np.concatenate([w.features[:, columns] for w in windows]),
        label=np.concatenate([w.labels for w in windows]),
        group=np.concatenate([w.group_sizes for w in windows]),
        weight=np.concatenate([w.weights for w in windows]),
        feature_name=[FEATURES[c] for c in columns],
        free_raw_data=True,
        params={"max_bin": settings.max_bin, "verbosity": -1},
    )
    params = {
        "objective": settings.objective,
        "lambdarank_truncation_level": settings.truncation_level,
        "label_gain": [
            float(label) if settings.gain == "linear" else 2.0**label - 1
            for label in range(settings.max_label + 1)
        ],
        "eval_at": [10],
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": 0.9,
        "max_bin": settings.max_bin,
        "num_threads": settings.threads,
        "deterministic": True,
        "force_col_wise": True,
        "seed": 42,
        "verbosity": -1,
    }
    return lightgbm.train(params, data, num_boost_round=settings.rounds)


def feature_columns(settings: RankerSettings) -> np.ndarray:
    """Positions in FEATURES of the features the settings keep."""
    left_out = {name for group in settings.without_features for name in FEATURE_GROUPS[group]}
    return np.array([i for i, name in enumerate(FEATURES) if name not in left_out], dtype=np.int64)

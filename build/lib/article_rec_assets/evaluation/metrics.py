"""Ranking metrics (HR@k, MRR@k, NDCG@k, coverage, fallback share), the checks every served list
passes, and the summary tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from article_rec_assets.recommenders.click_log import TrainingClicks


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

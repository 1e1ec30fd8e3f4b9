"""Variants of the article model's ranker settings, side by side on the tuning folds of G1.

    .venv/bin/python -m bench.tune_ranker '{"defaults": {}, "31 leaves": {"num_leaves": 31}}'
    .venv/bin/python -m bench.tune_ranker '{"defaults": {}}' --days 2017-10-08 2017-10-09 --hours

Each variant is `RankerSettings` overrides (site YAML's `model.ranker`); successor counts is the
baseline the ratios are to. Default folds: 6 and 7 October at 08:00, 14:00 and 20:00 UTC (the
tuning folds; 8 and 9 October are the check, never tuned on). The G1 files are read where they lie.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from article_rec_assets.evaluation.datasets import read_g1
from article_rec_assets.evaluation.metrics import summarize
from article_rec_assets.evaluation.replay import evaluate
from article_rec_assets.recommenders.article_model import PipelineModel
from article_rec_assets.recommenders.baselines import SuccessorCounts
from article_rec_assets.settings.sites import ModelSettings, RankerSettings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help='JSON: {"name": {ranker setting: value}}')
    parser.add_argument("--g1", type=Path, default=REPO.parent / "shared" / "data" / "globo-g1")
    parser.add_argument("--days", nargs="+", default=["2017-10-06", "2017-10-07"])
    parser.add_argument("--hours", type=int, nargs="*", default=[8, 14, 20], help="none given: every fold")
    args = parser.parse_args()
    variants = json.loads(args.variants)
    log = read_g1(args.g1)
    recommenders = [SuccessorCounts()]
    for name, overrides in variants.items():
        model = PipelineModel(ModelSettings(ranker=RankerSettings(**overrides)))
        model.name = name
        recommenders.append(model)
    folds = evaluate(log, args.days, recommenders, hours=args.hours or None)
    total = summarize(folds, 10).query("day == 'total'").set_index("recommender")
    base = total.loc[SuccessorCounts.name]
    fits = folds.groupby("recommender")["fit_seconds"].mean()
    print("| variant | HR@10 | MRR@10 | coverage | fit s |\n| --- | --- | --- | --- | --- |")
    for name in [SuccessorCounts.name, *variants]:
        row = total.loc[name]
        print(
            f"| {name} | {row['HR@10']:.4f} ({row['HR@10'] / base['HR@10']:.3f}x) | "
            f"{row['MRR@10']:.4f} ({row['MRR@10'] / base['MRR@10']:.3f}x) | {row['coverage']:.4f} | "
            f"{fits[name]:.2f} |"
        )


if __name__ == "__main__":
    main()

"""Offline evaluation: replay a click log with a retrain every 2 hours and score next-click recommendations.

    python -m article_rec_assets.evaluate --g1 ../shared/data/globo-g1 --days 2017-10-08 2017-10-09
    python -m article_rec_assets.evaluate --clicks clicks.csv [--articles articles.csv] --days 2024-05-01

Prints one Markdown table per day and one for all days: per recommender the test pairs, HR@k,
MRR@k, NDCG@k (micro-averaged over pairs), catalogue coverage (per fold, averaged over folds),
fallback share (share of top-k slots filled with last-hour popularity), pairs filled (share of pairs
whose list needed any fill), cold sources (share of pairs whose source article was not clicked in
the training window), and mean fit / recommend seconds per retrain. The protocol is in
article_rec_assets/evaluation/replay.py.

The G1 files are read where they lie (non-commercial research data: never copy them into the
repository).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from article_rec_assets.evaluation.datasets import read_click_log, read_g1
from article_rec_assets.evaluation.metrics import markdown_table, summarize
from article_rec_assets.evaluation.replay import BASELINES, MODELS, evaluate
from article_rec_assets.recommenders.click_log import TIES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--g1", type=Path, help="folder of the Globo.com G1 files (clicks/, metadata)")
    source.add_argument(
        "--clicks",
        type=Path,
        help="CSV or Parquet with reader_id, session_id, article_id, timestamp (UTC) [, published_at]",
    )
    parser.add_argument("--articles", type=Path, help="with --clicks: table of article_id, published_at")
    parser.add_argument("--days", nargs="+", required=True, help="UTC days to test, YYYY-MM-DD")
    parser.add_argument("--train-days", type=float, default=7, help="training window before each t0")
    parser.add_argument("--k", type=int, default=10, help="list length")
    parser.add_argument("--step-hours", type=int, default=2, help="retrain interval = test window")
    parser.add_argument(
        "--ties",
        choices=TIES,
        default="popularity",
        help="order of equal scores: last-hour popularity (default) or ascending article id "
        "(reproduces the G1 reference figures)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(BASELINES),
        choices=[*MODELS, "all"],
        help="recommenders to run (default: the baselines; 'all' adds the ALS variants)",
    )
    parser.add_argument(
        "--hours", type=int, nargs="+", help="only the folds starting at these UTC hours (default: all)"
    )
    parser.add_argument("--folds-csv", type=Path, help="also write one row per (fold, recommender) here")
    parser.add_argument("--quiet", action="store_true", help="no per-fold progress on stderr")
    args = parser.parse_args(argv)
    if args.articles and not args.clicks:
        parser.error("--articles goes with --clicks")
    if args.k <= 0:
        parser.error("--k must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    log = read_g1(args.g1) if args.g1 else read_click_log(args.clicks, args.articles)
    loaded = time.perf_counter()
    print(
        f"loaded {len(log):,} clicks on {log.n_articles:,} articles in {loaded - started:.1f} s",
        file=sys.stderr,
    )

    names = list(MODELS) if "all" in args.models else list(dict.fromkeys(args.models))
    recommenders = [MODELS[name]() for name in names]
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    folds = evaluate(
        log,
        args.days,
        recommenders,
        train_days=args.train_days,
        k=args.k,
        step_hours=args.step_hours,
        ties=args.ties,
        progress=progress,
        hours=args.hours,
    )
    elapsed = time.perf_counter() - loaded
    if args.folds_csv:
        folds.to_csv(args.folds_csv, index=False)

    summary = summarize(folds, args.k)
    for day, table in summary.groupby("day", sort=False):
        label = "all days" if day == "total" else f"{day} (UTC)"
        print(f"\n### {label}\n")
        print(markdown_table(table))
    fits = folds.groupby("recommender", sort=False)["fit_seconds"].agg(["mean", "sum"])
    print(
        f"\n{folds['t0'].nunique()} folds, train window {args.train_days:g} days, k={args.k}, "
        f"ties by {args.ties}; "
        f"evaluation {elapsed:.1f} s after loading {loaded - started:.1f} s. Fit seconds per retrain: "
        + ", ".join(f"{name} {row['mean']:.2f} (total {row['sum']:.1f})" for name, row in fits.iterrows())
    )


if __name__ == "__main__":
    main()

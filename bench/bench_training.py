"""Training plus top-k for one large site: the interaction matrix, ALS, the click log, the article
model and its top-k lists, on synthetic sessionized interactions (about 1.3 million clicks in the
window, 25,000 articles), each step timed in a fresh subprocess per run.

    .venv/bin/python -m bench.bench_training [--rows 1300000] [--articles 25000] [--repeat 3]
    .venv/bin/python -m bench.bench_training --rows 100000 --articles 3000 --repeat 1   # smoke run

The parent process imports neither numpy nor pandas: a child's peak RSS (`ru_maxrss`) starts at
its parent's RSS at the fork. One child generates the data into a temporary folder (Parquet), then
one child per run reads it and times the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2026-03-08T00:00:00Z"  # the window's end; the clicks fall in the 7 days before it
WINDOW_DAYS = 7
RESULT_PREFIX = "BENCH_RESULT "
GOAL_SECONDS = 60.0
# What implicit's check_blas_config warns (implicit/utils.py), for the child's stderr.
BLAS_WARNING_MARKERS = ("is configured to use", "OPENBLAS_NUM_THREADS", "threadpool_limits(1")
STEPS = (
    ("matrix", "a. build_interaction_matrix ({signal}, {training_days} days)"),
    ("als", "b. train_article_embeddings (ALS, {factors} factors, {iterations} iterations)"),
    ("clicks", "c. site_click_log + candidate_mask + training_clicks ({session_days} days)"),
    ("examples", "d. window_examples of the ranker's label windows (each built once in the pipeline)"),
    ("fit", "e. fit_article_model (learned ranker {ranker}, als_weight {als_weight})"),
    ("topk", "f. article_model_recommendations (k={k})"),
)


# --------------------------------------------------------------------------------------------
# Synthetic data (runs in a child)


def generate(rows: int, articles: int, seed: int):
    """Sessionized interactions (INTERACTION_DTYPES, one row per click of a session on an article)
    over the WINDOW_DAYS before AS_OF, and the catalogue of the articles (CATALOGUE_COLUMNS).

    Articles: 85% published over the window, 15% backlist up to 21 days before it; Zipf-like
    popularity times a one-day recency decay (plus a small floor), so most reading is on recent
    articles. Sessions: 1-10 clicks (geometric-like, mean ~3), starts following a daily cycle, each
    on a topic (mostly the reader's favourite); a click after the first follows the previous
    article's "related" link (an older article of its topic) with probability 0.35, else an article
    of the session's topic (0.5) or of any topic (0.15). No article twice in a session; nothing
    is read before it is published. Readers: about 300k per 1.3M clicks, a few of them very active.
    """
    import numpy as np
    import pandas as pd

    from article_rec_assets.catalogue.snapshot import CATALOGUE_COLUMNS
    from article_rec_assets.ingestion.sessions import INTERACTION_DTYPES

    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp(AS_OF)
    window_start = as_of - pd.Timedelta(days=WINDOW_DAYS)
    hours = WINDOW_DAYS * 24
    n_topics = int(np.clip(articles // 500, 1, 50))
    # A pool of 560k readers per 1.3M clicks, drawn with a skew: about 300k of them read.
    n_readers = max(100, round(rows * 560_000 / 1_300_000))

    # Articles, in publishing order (external ids increase with publish time).
    backlist = rng.random(articles) < 0.15
    pub_hours = np.sort(
        np.where(backlist, -rng.uniform(0, 21 * 24, articles), rng.uniform(0, hours - 1, articles))
    )
    topic_popularity = 1 / np.arange(1, n_topics + 1) ** 0.7
    topic_popularity /= topic_popularity.sum()
    topic = rng.choice(n_topics, size=articles, p=topic_popularity)
    base = 1 / (rng.permutation(articles) + 1.0) ** 0.8  # Zipf-like, rank at random

    # Per hour bucket, cumulative weights over the articles laid out topic by topic: one
    # searchsorted on the flattened array samples every click of that (hour, topic) at once.
    layout = np.lexsort((np.arange(articles), topic))  # position -> article
    topic_start = np.searchsorted(topic[layout], np.arange(n_topics), side="left")
    topic_end = np.searchsorted(topic[layout], np.arange(n_topics), side="right")
    age = (np.arange(hours)[:, None] + 0.5) - pub_hours[layout][None, :]  # hours x positions
    weights = np.where(age > 0.5, base[layout][None, :] * (np.exp(-np.maximum(age, 0) / 24.0) + 0.01), 0.0)
    flat = np.cumsum(weights.ravel())
    row_start = np.concatenate([[0.0], flat[articles - 1 :: articles][:-1]])
    ends = flat[np.arange(hours)[:, None] * articles + topic_end[None, :] - 1]
    starts = np.where(
        topic_start[None, :] > 0,
        flat[np.maximum(np.arange(hours)[:, None] * articles + topic_start[None, :] - 1, 0)],
        row_start[:, None],
    )
    topic_total = ends - starts  # hours x topics
    busiest_topic = np.argmax(topic_total, axis=1)
    del weights, age

    def sample(hour: np.ndarray, tpc: np.ndarray) -> np.ndarray:
        tpc = np.where(topic_total[hour, tpc] > 0, tpc, busiest_topic[hour])
        low, total = starts[hour, tpc], topic_total[hour, tpc]
        position = np.searchsorted(flat, low + rng.random(len(hour)) * total, side="right")
        position = np.clip(position - hour * articles, topic_start[tpc], topic_end[tpc] - 1)
        return layout[position]

    # "Related" link of each article: an older article of its topic (1-20 back), else a newer one.
    link = np.empty(articles, dtype=np.int64)
    for t in range(n_topics):
        members = layout[topic_start[t] : topic_end[t]]  # in publishing order
        back = np.arange(len(members)) - rng.integers(1, 21, len(members))
        forward = np.minimum(np.arange(len(members)) + 1, len(members) - 1)
        link[members] = members[np.where(back >= 0, back, forward)]

    # Sessions: a few more clicks than asked for; the last ones are cut below.
    lengths_p = 0.7 ** np.arange(10)
    lengths_p /= lengths_p.sum()
    n_sessions = int(rows * 1.08 / (np.arange(1, 11) @ lengths_p)) + 10
    length = rng.choice(np.arange(1, 11), size=n_sessions, p=lengths_p)
    reader_topic = rng.choice(n_topics, size=n_readers, p=topic_popularity)
    reader = rng.permutation(n_readers)[(n_readers * rng.random(n_sessions) ** 1.5).astype(np.int64)]
    session_topic = np.where(
        rng.random(n_sessions) < 0.7,
        reader_topic[reader],
        rng.choice(n_topics, size=n_sessions, p=topic_popularity),
    )
    hour_of_day = np.arange(hours) % 24
    start_weight = 1 + 0.7 * np.cos(2 * np.pi * (hour_of_day - 14) / 24)
    start_hour = rng.choice(hours, size=n_sessions, p=start_weight / start_weight.sum())
    start_s = (start_hour + rng.random(n_sessions)) * 3600.0

    # Clicks, position by position (at most 10 vectorized steps).
    max_len = 10
    clicked = np.full((n_sessions, max_len), -1, dtype=np.int64)
    click_s = np.zeros((n_sessions, max_len))
    dwell = np.clip(rng.lognormal(np.log(50), 1.1, size=(n_sessions, max_len)), 1, 1800)
    for j in range(max_len):
        live = np.flatnonzero(length > j)
        if j:
            gap = np.minimum(dwell[live, j - 1], 600) + rng.exponential(20, len(live))
            click_s[live, j] = click_s[live, j - 1] + gap
        else:
            click_s[live, 0] = start_s[live]
        hour = np.minimum((click_s[live, j] // 3600).astype(np.int64), hours - 1)
        choice = np.full(len(live), -1, dtype=np.int64)
        for _attempt in range(6):
            todo = np.flatnonzero(choice < 0)
            if not len(todo):
                break
            draw = rng.random(len(todo))
            other = rng.choice(n_topics, size=len(todo), p=topic_popularity)
            tpc = np.where(draw < 0.85, session_topic[live[todo]], other)
            pick = sample(hour[todo], tpc)
            if j:
                linked = link[clicked[live[todo], j - 1]]
                follow = (draw < 0.35) & (pub_hours[linked] < hour[todo])
                pick = np.where(follow, linked, pick)
            seen = (clicked[live[todo], :j] == pick[:, None]).any(axis=1)
            choice[todo[~seen]] = pick[~seen]
        clicked[live, j] = choice  # -1 where six draws repeated the session: no click
    row_session, row_position = np.nonzero(clicked >= 0)
    row_article = clicked[row_session, row_position]
    row_s = click_s[row_session, row_position]
    row_dwell = dwell[row_session, row_position]
    inside = row_s < hours * 3600.0  # a session running past as_of is cut there
    row_session, row_article, row_s, row_dwell = (
        a[inside] for a in (row_session, row_article, row_s, row_dwell)
    )
    row_session, row_article, row_s, row_dwell = (
        a[:rows] for a in (row_session, row_article, row_s, row_dwell)
    )
    n = len(row_session)

    # Rows as sessionize writes them: sorted by reader, session, external id (and day).
    reader_hex = np.sort(rng.integers(0, 2**63, size=n_readers, dtype=np.int64))
    reader_ids = np.array([f"{x:016x}-r" for x in reader_hex], dtype=object)
    session_num = rng.integers(0, 2**47, size=n_sessions)  # fixed-width hex: sorts as the numbers
    session_ids = np.array([f"s{x:012x}" for x in session_num], dtype=object)
    external_ids = np.array([str(100_000 + i) for i in range(articles)], dtype=object)  # sort = id order
    paths = np.array([f"/article/{100_000 + i}/story-{100_000 + i}/" for i in range(articles)], dtype=object)
    order = np.lexsort((row_article, session_num[row_session], reader[row_session]))
    row_session, row_article, row_s, row_dwell = (
        a[order] for a in (row_session, row_article, row_s, row_dwell)
    )
    pings = (row_dwell // 10).astype(np.int64)
    first_seen = window_start + pd.to_timedelta(np.round(row_s * 1000).astype(np.int64), unit="ms")
    interactions = pd.DataFrame(
        {
            "reader_id": reader_ids[reader[row_session]],
            "session_id": session_ids[row_session],
            "external_id": external_ids[row_article],
            "article_path": paths[row_article],
            "day": first_seen.floor("D"),
            "page_views": np.where(rng.random(n) < 0.05, 2, 1),
            "pings": pings,
            "engaged_seconds": pings * 10.0,
            "ping_dwell_seconds": pings * 10.0,
            "first_seen": first_seen,
            "last_seen": first_seen + pd.to_timedelta(pings * 10, unit="s"),
        }
    ).astype(INTERACTION_DTYPES)

    published = window_start + pd.to_timedelta(np.round(pub_hours * 3600).astype(np.int64), unit="s")
    catalogue = pd.DataFrame(
        {
            "external_id": pd.array(external_ids, dtype="string"),
            "path": pd.array(paths, dtype="string"),
            "title": pd.array([f"Story number {100_000 + i}" for i in range(articles)], dtype="string"),
            "published_at": published,
            "exclude_reason": pd.array([pd.NA] * articles, dtype="string"),
        }
    )[list(CATALOGUE_COLUMNS)]

    pairs_same = row_session[1:] == row_session[:-1]
    stats = {
        "rows": n,
        "sessions": len(np.unique(row_session)),
        "readers": len(np.unique(reader[row_session])),
        "articles": articles,
        "articles_clicked": len(np.unique(row_article)),
        "topics": n_topics,
        "clicks_on_articles_under_48h": float(
            np.mean(row_s / 3600 - pub_hours[row_article] < 48) if n else 0.0
        ),
        "top_1pct_articles_click_share": float(
            np.sort(np.bincount(row_article, minlength=articles))[::-1][: max(1, articles // 100)].sum()
            / max(n, 1)
        ),
        "session_pairs": int(pairs_same.sum()),
    }
    return interactions, catalogue, stats


def child_generate(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    interactions, catalogue, stats = generate(args.rows, args.articles, args.seed)
    stats["generate_seconds"] = round(time.perf_counter() - started, 2)
    data = Path(args.data)
    interactions.to_parquet(data / "interactions.parquet", index=False)
    catalogue.to_parquet(data / "catalogue.parquet", index=False)
    stats["seconds_with_writing"] = round(time.perf_counter() - started, 2)
    print(RESULT_PREFIX + json.dumps(stats), flush=True)


# --------------------------------------------------------------------------------------------
# One timed run (a child)


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_run(args: argparse.Namespace) -> None:
    import pickle
    import warnings

    result: dict = {"seconds": {}, "peak_mb": {}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import pandas as pd
        from threadpoolctl import threadpool_info

        from article_rec_assets.ingestion.sessions import INTERACTION_DTYPES
        from article_rec_assets.recommenders.als import train_article_embeddings
        from article_rec_assets.recommenders.article_model import (
            article_model_recommendations,
            candidate_mask,
            fit_article_model,
            site_click_log,
            window_examples,
        )
        from article_rec_assets.recommenders.click_log import training_clicks
        from article_rec_assets.recommenders.interaction_matrix import build_interaction_matrix
        from article_rec_assets.recommenders.ranker import label_window_starts
        from article_rec_assets.settings.sites import ModelSettings, TrainingSettings

        result["blas"] = [
            f"{p['internal_api']}, {p['num_threads']} threads"
            for p in threadpool_info()
            if p["user_api"] == "blas"
        ]
        data = Path(args.data)
        interactions = pd.read_parquet(data / "interactions.parquet").astype(INTERACTION_DTYPES)
        catalogue = pd.read_parquet(data / "catalogue.parquet")
        as_of = pd.Timestamp(AS_OF)
        training = TrainingSettings()
        model_settings = (
            ModelSettings() if args.als_weight is None else ModelSettings(als_weight=args.als_weight)
        )
        result["load_mb"] = round(rss_mb(), 1)

        def step(name: str, fn):
            started = time.perf_counter()
            out = fn()
            result["seconds"][name] = time.perf_counter() - started
            result["peak_mb"][name] = round(rss_mb(), 1)
            return out

        matrix = step("matrix", lambda: build_interaction_matrix(interactions, catalogue, as_of, training))
        embeddings = step("als", lambda: train_article_embeddings(matrix, model_settings))

        def clicks():
            log = site_click_log(interactions, catalogue)
            mask = candidate_mask(log, catalogue, as_of)
            return log, training_clicks(log, as_of, model_settings.session_days, candidates=mask)

        log, train = step("clicks", clicks)
        examples = step(
            "examples",
            lambda: [
                window_examples(log, start, model_settings, candidates=candidate_mask(log, catalogue, start))
                for start in label_window_starts(train.t0, model_settings.ranker)
            ],
        )
        model = step("fit", lambda: fit_article_model(train, model_settings, examples, embeddings))
        recs = step("topk", lambda: article_model_recommendations(model, k=args.k))

        result.update(
            matrix=f"{matrix.shape[0]:,} readers x {matrix.shape[1]:,} articles, "
            f"{matrix.matrix.nnz:,} nonzeros",
            embeddings=list(embeddings.vectors.shape),
            log_clicks=len(log),
            train_clicks=len(train),
            candidates=len(train.catalogue),
            als_weight=model_settings.als_weight,
            als_weight_default=ModelSettings().als_weight,
            als_in_model=model.als_neighbours is not None,
            session_days=model_settings.session_days,
            training=training.model_dump(include={"signal", "training_days"}),
            model=model_settings.model_dump(include={"factors", "iterations"}),
            ranker={k: v for k, v in model.stats.items() if k.startswith("ranker")},
            model_pickle_mb=round(len(pickle.dumps(model)) / 1e6, 1),
            rec_rows=len(recs),
            rec_articles=int(recs["source_entity_id"].nunique()),
        )
    result["warnings"] = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# The parent


def run_child(args: argparse.Namespace, mode: str, data: Path) -> tuple[dict | None, str, str]:
    command = [
        sys.executable,
        "-m",
        "bench.bench_training",
        mode,
        "--data",
        str(data),
        "--rows",
        str(args.rows),
        "--articles",
        str(args.articles),
        "--seed",
        str(args.seed),
        "--k",
        str(args.k),
    ]
    if args.als_weight is not None:
        command += ["--als-weight", str(args.als_weight)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    result = json.loads(lines[-1][len(RESULT_PREFIX) :]) if done.returncode == 0 and lines else None
    return result, done.stderr, done.stdout


def blas_warnings(result: dict, stderr: str) -> list[str]:
    found = [w for w in result.get("warnings", []) if any(m in w for m in BLAS_WARNING_MARKERS)]
    found += [
        f"stderr: {line}" for line in stderr.splitlines() if any(m in line for m in BLAS_WARNING_MARKERS)
    ]
    return found


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_300_000, help="clicks (interaction rows) in the window")
    parser.add_argument("--articles", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--als-weight",
        type=float,
        default=None,
        help="override ModelSettings.als_weight (default: its default)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        return child_generate(args)
    if args.child:
        return child_run(args)

    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="bench_training_") as folder:
        data = Path(folder)
        made, stderr, stdout = run_child(args, "--generate", data)
        if made is None:
            print(f"data generation FAILED:\n{stdout}{stderr}")
            sys.exit(1)
        print(
            f"data: {made['rows']:,} clicks, {made['sessions']:,} sessions, {made['readers']:,} readers, "
            f"{made['articles']:,} articles ({made['articles_clicked']:,} clicked, {made['topics']} topics) "
            f"over the {WINDOW_DAYS} days before {AS_OF}; {made['session_pairs']:,} within-session pairs; "
            f"{made['clicks_on_articles_under_48h']:.0%} of clicks on articles under 48 h old, "
            f"top 1% of articles {made['top_1pct_articles_click_share']:.0%} of clicks; generated in "
            f"{made['generate_seconds']:.1f} s ({made['seconds_with_writing']:.1f} s with Parquet)"
        )
        runs, failed = [], []
        for i in range(args.repeat):
            result, stderr, stdout = run_child(args, "--child", data)
            if result is None:
                failed.append(i)
                tail = "\n".join((stdout + stderr).strip().splitlines()[-15:])
                print(f"run {i + 1} FAILED:\n{tail}")
                continue
            result["stderr"] = stderr
            runs.append(result)
            total = sum(result["seconds"].values())
            print(f"run {i + 1}: {total:.2f} s, peak {max(result['peak_mb'].values()):,.0f} MB")
    if not runs:
        print("every run FAILED")
        sys.exit(1)

    first = runs[0]
    print(f"BLAS in the child: {'; '.join(first['blas']) or 'none found'}")
    print(
        f"interaction matrix: {first['matrix']}; "
        f"ALS vectors {first['embeddings'][0]:,} x {first['embeddings'][1]}"
    )
    print(
        f"click log: {first['log_clicks']:,} clicks, {first['train_clicks']:,} in the last "
        f"{first['session_days']:g} days, {first['candidates']:,} candidate articles"
    )
    weight_note = "ModelSettings default" if args.als_weight is None else "--als-weight"
    used = (
        "joins the blend" if first["als_in_model"] else "not used by the blend; trained_model skips ALS then"
    )
    print(
        f"als_weight used: {first['als_weight']:g} ({weight_note}; default {first['als_weight_default']:g}); "
        f"ALS {used}"
    )
    print(
        f"median of {len(runs)} run(s), each in a fresh subprocess; RSS after reading the data "
        f"{statistics.median(r['load_mb'] for r in runs):,.0f} MB\n"
    )

    fmt = {
        **first["training"],
        **first["model"],
        "session_days": f"{first['session_days']:g}",
        "als_weight": f"{first['als_weight']:g}",
        "ranker": "on" if first["ranker"].get("ranker", "off") != "off" else "off",
        "k": args.k,
    }
    print(f"{'step':<72} {'median s':>9} {'peak MB':>9}   runs (s)")
    for key, label in STEPS:
        seconds = [r["seconds"][key] for r in runs]
        peak = max(r["peak_mb"][key] for r in runs)
        print(
            f"{label.format(**fmt):<72} {statistics.median(seconds):>9.2f} {peak:>9,.0f}   "
            + ", ".join(f"{s:.2f}" for s in seconds)
        )
    totals = [sum(r["seconds"].values()) for r in runs]
    total = statistics.median(totals)
    peak = max(max(r["peak_mb"].values()) for r in runs)
    print(f"{'total (a-e)':<72} {total:>9.2f} {peak:>9,.0f}   " + ", ".join(f"{s:.2f}" for s in totals))
    print()
    print(f"recommendations: {first['rec_rows']:,} rows, {first['rec_articles']:,} articles with a list")
    print(f"learned ranker (first run): {json.dumps(first['ranker'])}")
    print(f"trained model pickled (what trained_model stores): {first['model_pickle_mb']:,.1f} MB")
    others = sorted({w for r in runs for w in r["warnings"] if not any(m in w for m in BLAS_WARNING_MARKERS)})
    if others:
        print(f"other warnings ({len(others)}):")
        for w in others:
            print(f"  {w}")
    print()
    verdict = "PASS" if total <= GOAL_SECONDS and not failed else "FAIL"
    note = f" ({len(failed)} run(s) FAILED)" if failed else ""
    print(f"training + top-k: {total:.2f} s median total (goal <= {GOAL_SECONDS:g} s): {verdict}{note}")
    blas = sorted({w for r in runs for w in blas_warnings(r, r["stderr"])})
    if blas:
        print("implicit BLAS warning: " + " | ".join(blas) + ": FAIL")
    else:
        print("implicit BLAS warning: none: PASS")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

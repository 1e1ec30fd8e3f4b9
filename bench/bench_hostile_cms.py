"""Each answer of a hostile CMS, resolved beside a good article with a site's default settings
(10 s timeout, 3 retries, 2 requests/s): what becomes of the bad article, whether the good one
still resolves, how long it took and the peak memory; for one or more checkouts of the code.

    python bench/bench_hostile_cms.py [--code CHECKOUT ...] [--cases endless,huge,...]
    python bench/bench_hostile_cms.py --flood READS   # 100,000 made-up paths, each read READS times

Each case runs in its own process (memory limited to --memory-gb, stopped after --seconds), with
the checkout's `article_rec_assets` first on its path; the server is this checkout's
`article_rec_assets_tests/catalogue/hostile_cms.py` (a byte every 5 s for the trickles, a 2 GB
body for `huge`, as the catalogue issue measured).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from article_rec_assets_tests.catalogue.hostile_cms import hostile_cms  # noqa: E402

CASES = [
    "endless",
    "huge",
    "unannounced",
    "long-title",
    "trickle",
    "trickle-headers",
    "off-origin",
    "moved",
    "loop",
    "year-9999",
    "year-0001",
    "epoch-ms",
    "epoch-1e12",
    "now",
    "link-number",
    "link-list",
    "title-object",
    "superscript-retry",
    "encoded-html",
    "brackets",
    "deep",
]

CHILD = r"""
import json, resource, sys, time
from datetime import UTC, datetime
import pandas as pd
limit = int(sys.argv[3]) * 1024**3
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from article_rec_assets.catalogue.resolver import empty_cache, resolve_paths
from article_rec_assets.settings.catalogue_sources import JsonApiSource
key, url = sys.argv[1], sys.argv[2]
paths = [f"/news/{key}/", f"/news/{key}/", "/news/good/", "/news/good/"]  # read twice each
started = time.monotonic()
try:
    r = resolve_paths(paths, empty_cache(), JsonApiSource(base_url=url), site="bench",
                      path_pattern=r"^/news/(?P<external_id>[a-z0-9-]+)/?$",
                      now=datetime(2024, 5, 10, 12, tzinfo=UTC))
    rows = {p: (e, x) for p, e, x in zip(r.paths["path"], r.paths["external_id"], r.paths["exclude_reason"])}
    ext, reason = rows.get(f"/news/{key}/", (None, "not stored"))
    article = r.articles[r.articles["external_id"] == ext]
    title = article["title"].iloc[0] if len(article) else None
    out = {
        "outcome": "resolved" if pd.isna(reason) else str(reason),
        "title_chars": None if title is None else len(title),
        "title": None if title is None else title[:40],
        "published_at": str(article["published_at"].iloc[0]) if len(article) else None,
        "good_resolved": bool(pd.isna(rows.get("/news/good/", (None, "missing"))[1])),
        "requests": r.stats.requests,
    }
except BaseException as exc:
    out = {"outcome": f"raised {type(exc).__name__}: {str(exc)[:80]}", "good_resolved": False}
out["seconds"] = round(time.monotonic() - started, 1)
out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("RESULT " + json.dumps(out, default=str))
"""


def run_case(code: Path, key: str, url: str, memory_gb: int, seconds: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OPENBLAS_NUM_THREADS": "1"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, key, url, str(memory_gb)],
            capture_output=True,
            text=True,
            timeout=seconds,
            env=env,
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return {
            "outcome": f"still running after {seconds:g} s (stopped)",
            "seconds": round(time.monotonic() - started, 1),
        }
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "outcome": f"process died (exit {done.returncode}): {tail[:80]}",
        "seconds": round(time.monotonic() - started, 1),
    }


def flood(reads: int, paths: int = 100_000) -> None:
    """`paths` made-up article paths, each read `reads` times in the window, beside a good article
    read 50 times, resolved with the demo-tribune site's lookup settings against the local server."""
    import resource
    from datetime import UTC, datetime

    from article_rec_assets.catalogue.resolver import empty_cache, resolve_paths
    from article_rec_assets.partitions import SITES
    from article_rec_assets.settings.catalogue_sources import JsonApiSource

    articles = SITES["demo-tribune"].articles
    with hostile_cms() as url:
        window = {f"/news/made-up-{i}/": reads for i in range(paths)} | {"/news/good/": 50}
        started = time.monotonic()
        r = resolve_paths(
            window,
            empty_cache(),
            JsonApiSource(base_url=url),
            site="flood",
            path_pattern=r"^/news/(?P<external_id>[a-z0-9-]+)/?$",
            now=datetime(2024, 5, 10, 12, tzinfo=UTC),
            min_reads=articles.min_reads_to_look_up,
            max_new_paths=articles.max_new_paths_per_run,
        )
        s = r.stats
        print(
            f"{paths:,} paths read {reads}x: looked up {s.paths_looked_up:,}, {s.requests:,} requests, "
            f"{s.paths_waiting:,} waiting, {len(r.paths):,} path rows, good resolved: "
            f"{'/news/good/' in set(r.paths['path'])}, {time.monotonic() - started:.1f} s, "
            f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, action="append", help="a checkout (default: this one)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--memory-gb", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--trickle-seconds", type=float, default=5.0)
    parser.add_argument("--huge-bytes", type=int, default=2 * 1024**3)
    parser.add_argument("--parallel", type=int, default=6, help="cases at once (they mostly wait)")
    parser.add_argument("--flood", type=int, metavar="READS", help="instead: the flood of made-up paths")
    args = parser.parse_args()
    if args.flood:
        flood(args.flood)
        return
    codes = args.code or [ROOT]
    cases = args.cases.split(",")
    print(f"load average {os.getloadavg()[0]:.2f}")
    with hostile_cms(trickle_seconds=args.trickle_seconds, huge_bytes=args.huge_bytes) as url:
        for code in codes:
            print(f"\n== {code}")
            print("| answer | outcome | good article | s | peak MB | title |")
            print("| --- | --- | --- | --- | --- | --- |")
            with ThreadPoolExecutor(args.parallel) as pool:
                futures = [
                    pool.submit(run_case, code, key, url, args.memory_gb, args.seconds) for key in cases
                ]
                results = [future.result() for future in futures]
            for key, r in zip(cases, results, strict=True):
                title = r.get("title")
                shown = f"{r.get('title_chars')} chars: {title!r}" if title is not None else ""
                print(
                    f"| {key} | {r['outcome']} | {'resolved' if r.get('good_resolved') else 'no'} | "
                    f"{r.get('seconds')} | {r.get('peak_mb', '')} | {shown} |"
                )
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

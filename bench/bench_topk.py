"""Top-k similar articles: the project's `top_k_similar` against the previous job's way (scipy `cdist`
cosine in 2,000-row batches, then a full `argsort` of every row), on the same embeddings, in one
run, with a check that both find the same neighbours.

    .venv/bin/python -m bench.bench_topk [--articles 20000] [--dims 64] [--k 10] [--repeat 3]
"""

import argparse
import statistics
import time

import numpy as np
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_info

from article_rec_assets.recommenders.top_k import top_k_similar

OLD_BATCH_ROWS = 2000


def old_job_top_k(vectors: np.ndarray, k: int) -> np.ndarray:
    """The k + 1 nearest by cosine from a full sort of each row, minus the article itself."""
    neighbours = np.empty((len(vectors), k), dtype=np.int64)
    for start in range(0, len(vectors), OLD_BATCH_ROWS):
        batch = vectors[start : start + OLD_BATCH_ROWS]
        similarity = 1 - cdist(batch, vectors, "cosine")
        order = np.argsort(-similarity, axis=1)[:, : k + 1]
        for row, candidates in enumerate(order):
            neighbours[start + row] = [c for c in candidates if c != start + row][:k]
    return neighbours


def timed(fn, repeat: int) -> tuple[float, list[float], object]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    vectors = np.random.default_rng(0).normal(size=(args.articles, args.dims)).astype(np.float32)
    print(f"{args.articles:,} articles x {args.dims} dimensions, k = {args.k}, median of {args.repeat} runs")
    # As in production: BLAS keeps its threads here (only implicit's fit runs with one).
    blas = [
        f"{p['internal_api']}, {p['num_threads']} threads"
        for p in threadpool_info()
        if p["user_api"] == "blas"
    ]
    print(f"BLAS: {'; '.join(blas) or 'none found'}")
    old, old_runs, old_neighbours = timed(
        lambda: old_job_top_k(vectors.astype(np.float64), args.k), args.repeat
    )
    new, new_runs, (new_neighbours, _) = timed(lambda: top_k_similar(vectors, args.k), args.repeat)
    same = np.mean([set(a) == set(b) for a, b in zip(old_neighbours, new_neighbours, strict=True)])
    print(f"previous job (cdist + argsort): {old:8.2f} s   runs: " + ", ".join(f"{r:.2f}" for r in old_runs))
    print(f"top_k_similar:             {new:8.2f} s   runs: " + ", ".join(f"{r:.2f}" for r in new_runs))
    print(f"same neighbour sets: {same:.2%} of articles")
    ratio = old / new
    print(f"speed-up: {ratio:.1f}x (goal >= 10x): {'PASS' if ratio >= 10 else 'FAIL'}")


if __name__ == "__main__":
    main()

"""Publishing speed: the project's publish (COPY + one-transaction swap) against the previous job's way
(50 rows per INSERT statement, a 50 ms pause after each batch), on the same 400,000
recommendations (20,000 articles x 20), into a scratch schema of a local PostgreSQL.

    .venv/bin/python -m bench.bench_publishing [--url postgresql://127.0.0.1:5432/test]
        [--articles 20000] [--per-article 20] [--baseline-rows N]

`--baseline-rows` times the baseline on the first N rows only and scales its time to all rows
(its cost is linear: one statement and one pause per 50 rows); the default runs it on all rows,
which takes over 400 s by construction.
"""

import argparse
import time
import uuid

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import insert, text

from article_rec_assets.publishing.articles import upsert_articles
from article_rec_assets.publishing.schema import connect, ensure_schema, model_table
from article_rec_assets.publishing.swap import publish_recommendations

BATCH_ROWS = 50
PAUSE_SECONDS = 0.05


def make_data(articles: int, per_article: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"{100000 + i}" for i in range(articles)])
    catalogue = pd.DataFrame(
        {
            "external_id": pd.array(ids, dtype="string"),
            "path": pd.array([f"/article/{i}/a-title/" for i in ids], dtype="string"),
            "title": pd.array([f"Article {i}" for i in ids], dtype="string"),
            "published_at": pd.Timestamp("2026-03-01T00:00:00Z"),
            "exclude_reason": pd.array([pd.NA] * articles, dtype="string"),
        }
    )
    offsets = rng.integers(1, articles, size=(articles, per_article))
    targets = (np.arange(articles)[:, None] + offsets) % articles
    recs = pd.DataFrame(
        {
            "model_type": "article",
            "source_entity_id": np.repeat(ids, per_article),
            "recommended_external_id": ids[targets.ravel()],
            "score": np.round(rng.random(articles * per_article), 6),
        }
    ).drop_duplicates(["source_entity_id", "recommended_external_id"])
    return catalogue, recs


def baseline(engine, site: str, recs: pd.DataFrame, catalogue: pd.DataFrame, rows: int) -> float:
    """The previous job (docs/contract.md, section 5): a pending model, then 50 rows per INSERT
    with a pause after each batch."""
    article_ids = upsert_articles(engine, site, catalogue)
    started = time.perf_counter()
    with engine.begin() as conn:
        model_id = conn.execute(
            insert(model_table).values(type="article", site=site).returning(model_table.c.id)
        ).scalar_one()
    subset = recs.head(rows)
    values = list(
        zip(
            subset["source_entity_id"],
            [article_ids[t] for t in subset["recommended_external_id"]],
            subset["score"],
            strict=True,
        )
    )
    with engine.connect() as conn:
        for start in range(0, len(values), BATCH_ROWS):
            batch = values[start : start + BATCH_ROWS]
            placeholders = ", ".join(f"(:m, :s{i}, :a{i}, :c{i})" for i in range(len(batch)))
            params = {"m": model_id}
            for i, (source, article, score) in enumerate(batch):
                params.update({f"s{i}": source, f"a{i}": article, f"c{i}": score})
            conn.execute(
                text(
                    "INSERT INTO recommendation (model_id, source_entity_id, recommended_article_id, score) "
                    f"VALUES {placeholders}"
                ),
                params,
            )
            conn.commit()
            time.sleep(PAUSE_SECONDS)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--per-article", type=int, default=20)
    parser.add_argument("--baseline-rows", type=int, default=None)
    args = parser.parse_args()

    schema = f"bench_publishing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = connect(f"{args.url}?options=-csearch_path%3D{schema}")
    try:
        catalogue, recs = make_data(args.articles, args.per_article)
        ensure_schema(engine)
        print(f"{len(recs):,} recommendations for {len(catalogue):,} articles, PostgreSQL schema {schema}")

        # The project's publish, twice: into an empty database, then swapping over the first.
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            publish_recommendations(engine, "bench-site", recs, catalogue)
            timings.append(time.perf_counter() - started)
        project = min(timings)
        print(
            f"project publish (COPY + swap):  {project:8.2f} s  ({len(recs) / project:,.0f} rows/s)  runs: "
            + ", ".join(f"{t:.2f}" for t in timings)
        )

        rows = min(args.baseline_rows or len(recs), len(recs))
        measured = baseline(engine, "bench-baseline", recs, catalogue, rows)
        full = measured * len(recs) / rows
        note = "" if rows == len(recs) else f"  (measured on {rows:,} rows: {measured:.2f} s, scaled)"
        print(f"previous job (50-row INSERTs + 50 ms): {full:8.2f} s  ({len(recs) / full:,.0f} rows/s){note}")
        ratio = full / project
        print(f"speed-up: {ratio:.1f}x (goal >= 50x): {'PASS' if ratio >= 50 else 'FAIL'}")
    finally:
        engine.dispose()
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()

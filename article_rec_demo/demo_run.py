"""The demo's work, once the environment is set (see demo.py)."""

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from dagster import AssetRecordsFilter, DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from article_rec_assets.definitions import defs
from article_rec_assets.partitions import SITES, site_key, window_key
from article_rec_assets.publishing.api import api_recommendations
from article_rec_assets.publishing.schema import connect
from article_rec_assets.schedules import INGEST_WINDOW_JOB, MODEL_ASSETS, RECOMMENDATIONS_JOB, site_name
from article_rec_assets.settings import environment
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.sites import as_demo_site

# Runs log every step to the console; the demo prints its own summary instead (the generated data
# is dirty on purpose, so per-window quarantine warnings are expected: the summary counts them).
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SUMMARY_ASSETS = (
    "raw_events",
    "quarantined_event_lines",
    "sessionized_interactions",
    "article_catalogue",
    "ranker_examples",
    "trained_model",
    "article_popularity",
    "article_recommendations",
    "published_recommendations",
)


def run_demo(end: datetime, days: float) -> None:
    data_dir = environment.data_dir()
    demo_sites = [name for name, site in SITES.items() if as_demo_site(site).demo is not None]
    windows = [
        end - timedelta(hours=WINDOW_HOURS * i) for i in range(max(1, round(days * 24 / WINDOW_HOURS)), 0, -1)
    ]
    start, newest = windows[0], windows[-1]
    print(f"Generating clickstream from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC in {data_dir}")
    for name in demo_sites:
        s = generate_site(SITES[name], data_dir, start, end)
        print(f"  {name}: {s.articles} articles, {s.sessions} sessions, {s.events} events")

    instance = DagsterInstance.get()
    for name in demo_sites:
        print(f"Materializing {name}: {len(windows) - 1} windows ingested in one run, then the whole graph")
        started = time.perf_counter()
        # The history as a backfill runs it: one run over the range, oldest window first.
        defs.resolve_job_def(site_name(name, INGEST_WINDOW_JOB)).execute_in_process(
            instance=instance,
            run_config=QUIET,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: window_key(windows[0]),
                ASSET_PARTITION_RANGE_END_TAG: window_key(windows[-2]),
            },
        )
        ingested = time.perf_counter()
        defs.resolve_job_def(site_name(name, RECOMMENDATIONS_JOB)).execute_in_process(
            partition_key=window_key(newest), instance=instance, run_config=QUIET
        )
        newest_run = time.perf_counter() - ingested
        print(f"  history {ingested - started:.1f} s, the newest window's run {newest_run:.1f} s")

    print_summary(instance, demo_sites, newest)


def _records(instance: DagsterInstance, site: str, asset: str, partition: str):
    """The asset's newest materialization (of `partition`, for a window asset)."""
    partitions = None if asset in MODEL_ASSETS else [partition]
    return instance.fetch_materializations(
        AssetRecordsFilter(asset_key=site_key(site, asset), asset_partitions=partitions), limit=1
    ).records


def _latest_size(instance: DagsterInstance, site: str, asset: str, partition: str) -> str:
    """The size the asset's newest materialization of `partition` reported."""
    records = _records(instance, site, asset, partition)
    if not records or records[0].asset_materialization is None:
        return "not materialized"
    metadata = records[0].asset_materialization.metadata
    for key, label in (("dagster/row_count", "rows"), ("rows", "rows"), ("nonzeros", "nonzeros")):
        if key in metadata:
            return f"{metadata[key].value:,} {label}"
    return "materialized"


def _latest_metadata(instance: DagsterInstance, site: str, asset: str, partition: str) -> dict:
    records = _records(instance, site, asset, partition)
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def print_summary(instance: DagsterInstance, sites: list[str], newest: datetime) -> None:
    engine = connect(os.environ[environment.SERVING_DATABASE_URL_VAR])
    for name in sites:
        key = window_key(newest)
        print(f"\n== {name}, window {key}")
        for asset in SUMMARY_ASSETS:
            print(f"  {asset:28s} {_latest_size(instance, name, asset, key)}")
        verdict = _latest_metadata(instance, name, "recommendation_backtest", key).get("verdict")
        if verdict:
            print(f"  backtest: {verdict}")
        popularity = api_recommendations(engine, name, "default", size=3, model_type="popularity")
        for external_id, title, _ in popularity:
            recs = api_recommendations(engine, name, external_id, size=5)
            print(f"\n  Readers of {title!r} ({external_id}) also read:")
            for rec_id, rec_title, score in recs:
                print(f"    {score:.3f}  {rec_title} ({rec_id})")
    engine.dispose()
    print(
        f"\nServing database: {os.environ[environment.SERVING_DATABASE_URL_VAR].split('@')[-1]}"
        f"\nDagster home: {Path(os.environ['DAGSTER_HOME'])}  (see docs/operations.md: `make ui`)"
    )

"""Each site's jobs and schedule: every two hours, the site's newest complete window and
everything downstream of it; and the GA4 sensor that re-ingests a day GA4 rewrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from article_rec_assets.ingestion.ga4 import DAILY, recent_dates, table_folder, windows_of_date
from article_rec_assets.partitions import SITES, site_key, site_prefix, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.windows import WINDOW_HOURS, newest_complete_window

# A site's window assets (partitioned by its windows) and model assets (one value per site).
WINDOW_ASSETS = (
    "delivered_events",
    "reading_state",
    "raw_events",
    "quarantined_event_lines",
    "sessionized_interactions",
    "article_catalogue",
)
# The ranker's examples of a window are built when the window is new (the schedule's run), not by a
# backfill of history: the first retrain after it builds the label windows it lacks itself.
LABEL_ASSETS = ("ranker_examples",)
MODEL_ASSETS = (
    "trained_model",
    "article_popularity",
    "article_recommendations",
    "recommendation_backtest",
    "published_recommendations",
)
ALS_ASSETS = ("interaction_matrix",)  # only for a site whose model adds ALS neighbours
RECOMMENDATIONS_JOB, INGEST_WINDOW_JOB, RETRAIN_JOB, SCHEDULE = (
    "recommendations_job",
    "ingest_window_job",
    "retrain_job",
    "every_two_hours",
)


def site_name(site: str, what: str) -> str:
    """A site's job or schedule: `demo_tribune__recommendations_job`."""
    return f"{site_prefix(site)}__{what}"


def model_assets(site: str) -> tuple[str, ...]:
    """The site's model assets: with the interaction matrix where its model adds ALS neighbours."""
    return (*ALS_ASSETS, *MODEL_ASSETS) if SITES[site].model.als_weight > 0 else MODEL_ASSETS


def site_selection(site: str, assets: tuple[str, ...]) -> AssetSelection:
    """Some of a site's assets, by name."""
    return AssetSelection.assets(*(site_key(site, name) for name in assets))


def site_jobs(site: str) -> list[UnresolvedAssetJobDefinition]:
    return [
        define_asset_job(
            site_name(site, RECOMMENDATIONS_JOB),
            selection=site_selection(site, WINDOW_ASSETS + LABEL_ASSETS + model_assets(site)),
            description=f"{site}: ingest a 2-hour window (or a range), retrain as of its newest "
            "window on the trailing weeks, backtest, publish.",
            tags={"dagster/max_retries": 1},
        ),
        # A window's events, reading sessions and catalogue: what a backfill of history needs
        # before one retrain (a range of windows in one run).
        define_asset_job(
            site_name(site, INGEST_WINDOW_JOB),
            selection=site_selection(site, WINDOW_ASSETS),
            description=f"{site}: read, sessionize and catalogue a 2-hour window (or a range of them).",
        ),
        # After a backfill: retrain, backtest and publish once, as of the newest window ingested.
        define_asset_job(
            site_name(site, RETRAIN_JOB),
            selection=site_selection(site, model_assets(site)),
            description=f"{site}: retrain on the stored windows up to the newest ingested, backtest, "
            "publish. Launch it once after a backfill of history.",
            tags={"dagster/max_retries": 1},
        ),
    ]


def site_schedule(site: str) -> ScheduleDefinition:
    # A quarter past the even hour: the S3 loader has flushed the window's last hour folder by then.
    @schedule(
        name=site_name(site, SCHEDULE),
        job_name=site_name(site, RECOMMENDATIONS_JOB),
        cron_schedule="15 */2 * * *",
        execution_timezone="UTC",
        description=f"{site}: every two hours, the newest complete window (at 14:15, 12:00-14:00), "
        "ingested, trained on, backtested and published.",
    )
    def every_two_hours(context: ScheduleEvaluationContext):
        key = window_key(newest_complete_window(context.scheduled_execution_time))
        return RunRequest(run_key=f"{site}|{key}", partition_key=key, tags={"site": site})

    return every_two_hours


JOBS = [job for site in SITES for job in site_jobs(site)]
SCHEDULES = [site_schedule(site) for site in SITES]


# GA4 rewrites a day's daily table for up to three days as late hits arrive, and the daily table
# replaces the intraday one the schedule read: the day's windows are ingested again when it does.
@sensor(
    jobs=[job for job in JOBS if job.name.endswith(INGEST_WINDOW_JOB)],
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-ingests the windows of a GA4 site's day when GA4 writes or rewrites the day's "
    "daily table (the last 3 days); the next scheduled run trains on them.",
)
def ga4_daily_tables_rewritten(context: SensorEvaluationContext, event_bucket: EventBucket):
    seen: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
    now = datetime.now(UTC)
    requests, cursor = [], {}
    for site in SITES.values():
        ga4 = site.events.ga4
        if ga4 is None:
            continue
        cursor[site.name] = {}
        for day in recent_dates(now, ga4.timezone):
            fingerprint = event_bucket.folder_fingerprint(site, table_folder(ga4, DAILY, day))
            if fingerprint is None:
                continue
            cursor[site.name][f"{day}"] = fingerprint
            if seen.get(site.name, {}).get(f"{day}") == fingerprint:
                continue
            for start in windows_of_date(day, ga4.timezone, WINDOW_HOURS):
                if not site.events.reads_ga4(start) or start + timedelta(hours=WINDOW_HOURS) > now:
                    continue
                key = window_key(start)
                requests.append(
                    RunRequest(
                        run_key=f"ga4-daily:{site.name}|{key}:{fingerprint}",
                        job_name=site_name(site.name, INGEST_WINDOW_JOB),
                        partition_key=key,
                        tags={"site": site.name, "ga4_daily_table": f"{day}"},
                    )
                )
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return requests or SkipReason("no GA4 daily table written or rewritten since the last tick")

"""Every two hours, each site's newest complete window and everything downstream of it."""

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from article_rec_assets.ingestion.ga4 import DAILY, recent_dates, table_folder, windows_of_date
from article_rec_assets.partitions import SITES, site_window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.windows import WINDOW_HOURS, newest_complete_window

# The whole graph for one (site, window): ingest the window, retrain, publish.
recommendations_job = define_asset_job(
    "recommendations_job",
    selection=AssetSelection.all(),
    description="Ingest one site's 2-hour window, retrain on the trailing weeks, publish.",
    # Runs of one site must not overlap; different sites may run side by side.
    tags={"dagster/max_retries": 1},
)
# Only the window's own events: what a backfill of past windows needs before one retrain.
ingest_window_job = define_asset_job(
    "ingest_window_job",
    selection=AssetSelection.groups("ingestion"),
    description="Read and sessionize one site's 2-hour window.",
)

# After a backfill of past windows: retrain, backtest and publish once, for the newest window,
# on the re-ingested history (its own window's ingestion and catalogue are kept as they are).
retrain_job = define_asset_job(
    "retrain_job",
    selection=AssetSelection.groups("training", "recommendations", "publishing"),
    description="Retrain on the stored windows, backtest, publish: launch it for the newest window "
    "after a backfill.",
    tags={"dagster/max_retries": 1},
)


# A quarter past the even hour: the S3 loader has flushed the window's last hour folder by then.
@schedule(job=recommendations_job, cron_schedule="15 */2 * * *", execution_timezone="UTC")
def every_two_hours(context: ScheduleEvaluationContext):
    window = newest_complete_window(context.scheduled_execution_time)
    for site in SITES:
        key = site_window_key(site, window)
        yield RunRequest(run_key=str(key), partition_key=key, tags={"site": site})


# GA4 rewrites a day's daily table for up to three days as late hits arrive, and the daily table
# replaces the intraday one the schedule read: the day's windows are ingested again when it does.
@sensor(
    job=ingest_window_job,
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
                key = site_window_key(site.name, start)
                requests.append(
                    RunRequest(
                        run_key=f"ga4-daily:{key}:{fingerprint}",
                        partition_key=key,
                        tags={"site": site.name, "ga4_daily_table": f"{day}"},
                    )
                )
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return requests or SkipReason("no GA4 daily table written or rewritten since the last tick")

"""The GA4 sensor: GA4 rewrites a day's daily table for up to three days as late hits arrive, and
the daily table replaces the intraday one the schedule read, so the day's windows are ingested
again when it does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from article_rec_assets.ingestion.ga4 import DAILY, recent_dates, table_folder, windows_of_date
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.schedules import INGEST_WINDOW_JOB, JOBS, site_name
from article_rec_assets.settings.windows import WINDOW_HOURS


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

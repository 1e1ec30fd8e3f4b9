"""Each site's jobs and schedule: every two hours, the site's newest complete window and
everything downstream of it. (The GA4 sensor that re-ingests a day GA4 rewrote: ga4_sensor.py.)"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from article_rec_assets.partitions import SITES, site_key, site_prefix, window_key
from article_rec_assets.settings.windows import newest_complete_window

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

"""Every two hours, each site's newest complete window and everything downstream of it."""

from dagster import AssetSelection, RunRequest, ScheduleEvaluationContext, define_asset_job, schedule

from article_rec_assets.partitions import SITES, site_window_key
from article_rec_assets.settings.windows import newest_complete_window

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

"""All Dagster definitions, in one place; resources are chosen from the environment here."""

from dagster import Definitions, EnvVar
from dagster_aws.s3 import S3Resource

from article_rec_assets.assets.sites import site_assets
from article_rec_assets.ga4_sensor import ga4_daily_tables_rewritten
from article_rec_assets.io_managers import (
    ParquetIOManager,
    PickleIOManager,
    S3ParquetIOManager,
    S3PickleIOManager,
)
from article_rec_assets.partitions import SITES
from article_rec_assets.resources import CatalogueSources, EventBucket, ServingDatabase
from article_rec_assets.run_heartbeat import in_process_executor_with_heartbeat
from article_rec_assets.schedules import JOBS, SCHEDULES
from article_rec_assets.sensors import (
    alert_on_check_failure,
    alert_on_run_failure,
    record_checks_not_run,
    site_pools,
)
from article_rec_assets.settings import environment

# One set of assets per site file (asset factory): its key prefix, group and partitions.
all_assets = [asset for site in SITES for asset in site_assets(site)]


def s3_resource() -> S3Resource:
    """The S3 client settings every S3 use shares (events, asset values)."""

    def secret(name: str) -> EnvVar | None:
        # Only the variable's name, never its value: credentials stay out of run config and the
        # UI. Unset: boto3's default chain (instance or task role, ~/.aws, SSO...) applies.
        return EnvVar(name) if environment.env_is_set(name) else None

    return S3Resource(
        endpoint_url=environment.s3_endpoint_url(),
        region_name=environment.s3_region(),
        # botocore counts this setting as retries after the first attempt (s3_attempts).
        max_attempts=environment.s3_max_attempts() - 1,
        aws_access_key_id=secret(environment.AWS_ACCESS_KEY_ID_VAR),
        aws_secret_access_key=secret(environment.AWS_SECRET_ACCESS_KEY_VAR),
        aws_session_token=secret(environment.AWS_SESSION_TOKEN_VAR),
    )


def resources_for_environment() -> dict:
    data_dir = str(environment.data_dir())
    event_bucket = EventBucket(root_dir=data_dir)
    if environment.events_source() == "s3":  # ARTICLE_REC_EVENTS_SOURCE=s3 or an S3 endpoint URL
        # Bucket and prefix are per site, in its YAML; the client is the same for every site.
        event_bucket = EventBucket(s3=s3_resource())
    serving_url = (
        EnvVar(environment.SERVING_DATABASE_URL_VAR)
        if environment.serving_database_url_is_set()
        else environment.default_serving_database_url()
    )
    # Asset values in the storage folder of the instance that runs them ($DAGSTER_HOME/storage),
    # or, when ARTICLE_REC_ASSET_STORAGE names an S3 prefix, there: runs then share no disk.
    storage = environment.asset_storage()
    if storage is None:
        io_managers = {"table_io_manager": ParquetIOManager(), "io_manager": PickleIOManager()}
    else:
        bucket, prefix = storage
        client = s3_resource()
        io_managers = {
            "table_io_manager": S3ParquetIOManager(s3_resource=client, s3_bucket=bucket, s3_prefix=prefix),
            "io_manager": S3PickleIOManager(s3_resource=client, s3_bucket=bucket, s3_prefix=prefix),
        }
    return {
        "event_bucket": event_bucket,
        "catalogue_sources": CatalogueSources(files_dir=data_dir),
        "serving_database": ServingDatabase(url=serving_url),
        **io_managers,
    }


defs = Definitions(
    assets=all_assets,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[
        alert_on_run_failure,
        alert_on_check_failure,
        record_checks_not_run,
        ga4_daily_tables_rewritten,
        site_pools,
    ],
    resources=resources_for_environment(),
    # One process per run: a site's graph is a chain, so a process per step would only add an
    # interpreter start and a reload of pandas and implicit to every step. Runs scale out (one
    # per site and window, or range of windows), not steps. The run's heartbeat tells run
    # monitoring its worker lives (run_heartbeat.py).
    executor=in_process_executor_with_heartbeat,
)

"""All Dagster definitions, in one place; resources are chosen from the environment here."""

from dagster import Definitions, EnvVar, FilesystemIOManager, load_assets_from_modules

from article_rec_assets import environment
from article_rec_assets.assets import catalogue, ingestion, publishing, recommendations, training
from article_rec_assets.io_managers import ParquetIOManager
from article_rec_assets.resources import CatalogueFiles, EventBucket, ServingDatabase
from article_rec_assets.schedules import every_two_hours, ingest_window_job, recommendations_job

all_assets = load_assets_from_modules([ingestion, catalogue, training, recommendations, publishing])


def resources_for_environment() -> dict:
    data_dir = str(environment.data_dir())
    storage = environment.storage_dir()
    serving_url = (
        EnvVar(environment.SERVING_DATABASE_URL_VAR)
        if environment.serving_database_url_is_set()
        else environment.default_serving_database_url()
    )
    return {
        "event_bucket": EventBucket(root_dir=data_dir),
        "catalogue_files": CatalogueFiles(root_dir=data_dir),
        "serving_database": ServingDatabase(url=serving_url),
        "table_io_manager": ParquetIOManager(base_dir=str(storage)),
        "io_manager": FilesystemIOManager(base_dir=str(storage)),
    }


defs = Definitions(
    assets=all_assets,
    jobs=[recommendations_job, ingest_window_job],
    schedules=[every_two_hours],
    resources=resources_for_environment(),
)

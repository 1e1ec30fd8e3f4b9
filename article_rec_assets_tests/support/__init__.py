"""What the tests share that is not a fixture: the demo data's span, the shared data folder, a
PostgreSQL schema or database of their own, the test S3 server's settings, and the resources the
assets bind. Fixtures are in ../conftest.py. The support for one kind of test is beside this module:
operating.py (an instance driven as the daemon and the UI drive it), containers.py (the image and
podman), keys.py (asset keys), materialize_windows.py (a run in a process of its own)."""

import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import FilesystemIOManager
from dagster_aws.s3 import S3Resource

from article_rec_assets.io_managers import ParquetIOManager, PickleIOManager
from article_rec_assets.resources import CatalogueSources, EventBucket, ServingDatabase
from article_rec_assets.settings.windows import WINDOW_HOURS

REPO = Path(__file__).resolve().parents[2]
# The workplace's read-only data (../shared/data beside the checkout; CI lays it out the same way).
SHARED_DATA = Path(os.environ.get("ARTICLE_REC_SHARED_DATA", REPO.parent / "shared" / "data"))
SNOWPLOW_SAMPLE = SHARED_DATA / "snowplow" / "rdb_loader_spec4_enriched_events.tsv"


def shared_data_or_skip(path: Path) -> Path:
    """`path` under the shared data; missing, a test fails in CI and is skipped elsewhere."""
    if not path.exists():
        message = f"{path} is missing (set ARTICLE_REC_SHARED_DATA to the shared data folder)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# Enriched-TSV positions as docs/contract.md, section 3 gives them (page_urlhost at Snowplow's own
# position), written out here so that tests check the code against the contract, not itself.
TSV_FIELD_COUNT = 131
CONTRACT_TSV_POSITIONS = {
    "app_id": 0,
    "platform": 1,
    "collector_tstamp": 3,
    "dvce_created_tstamp": 4,
    "event": 5,
    "event_id": 6,
    "domain_userid": 15,
    "page_url": 29,
    "page_urlhost": 33,
    "page_urlpath": 35,
    "contexts": 52,
    "unstruct_event": 58,
    "useragent": 77,
    "dvce_sent_tstamp": 119,
    "domain_sessionid": 123,
    "derived_tstamp": 124,
    "event_name": 126,
}

POSTGRES_DSN = os.environ.get("ARTICLE_REC_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
# The generated data ends here; tests use windows before it.
DEMO_END = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
DEMO_DAYS = 2
DEMO_WINDOWS = [
    DEMO_END - timedelta(hours=WINDOW_HOURS * i) for i in range(DEMO_DAYS * 12, 0, -1)
]  # oldest first
# Dummy credentials and region for the test S3 server, passed as explicit configuration (never
# through the environment of the session, so nothing real can be picked up or leaked).
S3_TEST_REGION = "us-east-1"
S3_TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def local_resources(data_dir: Path, storage: Path, serving_url: str) -> dict:
    """The embedded default's resources over generated data: tables and values in `storage`."""
    return stored_in(
        {
            "event_bucket": EventBucket(root_dir=str(data_dir)),
            "catalogue_sources": CatalogueSources(files_dir=str(data_dir)),
            "serving_database": ServingDatabase(url=serving_url),
        },
        storage,
    )


def stored_in(resources: dict, storage: Path) -> dict:
    """`resources` with the table and value stores in `storage`."""
    return {
        **resources,
        "table_io_manager": ParquetIOManager(base_dir=str(storage)),
        "io_manager": PickleIOManager(base_dir=str(storage)),
    }


def postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must run the PostgreSQL tests)")
        pytest.skip(f"{message}; start it to run the serving-database tests")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL into a fresh schema of the `test` database, dropped afterwards.

    Every table the code creates lands in that schema through the connection's search_path.
    """
    postgres_or_skip()
    schema = f"article_rec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def ingestion_resources(event_bucket: EventBucket, data_dir: Path, storage: Path) -> dict:
    """Every resource the assets bind, for materializing the ingestion group in this process:
    the given bucket, tables and values under `storage` (the catalogue and the serving database
    are not used by the group, but every asset's resources must be bound)."""
    return {
        "event_bucket": event_bucket,
        "catalogue_sources": CatalogueSources(files_dir=str(data_dir)),
        "serving_database": ServingDatabase(url=f"sqlite:///{storage / 'serving.db'}"),
        "table_io_manager": ParquetIOManager(base_dir=str(storage)),
        "io_manager": FilesystemIOManager(base_dir=str(storage)),
    }


def production_home(home: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME with the production dagster.yaml (`deploy/`), its PostgreSQL settings
    pointed at `database` through the environment variables it reads."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    server = urlsplit(POSTGRES_DSN)
    monkeypatch.setenv("DAGSTER_PG_HOST", server.hostname or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", server.username or "root")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    monkeypatch.setenv("DAGSTER_PG_DB", database)
    return home


def s3_test_resource(endpoint_url: str, **config) -> S3Resource:
    """dagster-aws's S3 resource for the test server (or a proxy in front of it)."""
    return S3Resource(endpoint_url=endpoint_url, region_name=S3_TEST_REGION, **S3_TEST_CREDENTIALS, **config)


def upload_objects(client, bucket: str, objects: dict[str, bytes]) -> None:
    """Put `objects` (key -> bytes) into `bucket`, creating the bucket if it is missing."""
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=bucket, Key=item[0], Body=item[1])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, objects.items()))


def upload_folder(client, folder: Path, bucket: str, prefix: str = "") -> list[str]:
    """Every file under `folder` into `bucket`, at its path relative to `folder` under `prefix`
    (`<prefix>/enriched/good/YYYY/MM/DD/HH/...` for a local bucket folder); returns the keys."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    objects = {
        base + path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    upload_objects(client, bucket, objects)
    return list(objects)

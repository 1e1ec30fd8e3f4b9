"""Shared fixtures: a PostgreSQL schema of our own, a generated demo clickstream, and an S3 API
(moto's server, over real HTTP on localhost) holding the same clickstream."""

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
from dagster import FilesystemIOManager
from dagster_aws.s3 import S3Resource

from article_rec_assets.generator.clickstream import generate_site
from article_rec_assets.io_managers import ParquetIOManager, PickleIOManager
from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.resources import CatalogueSources, EventBucket, ServingDatabase
from article_rec_assets.settings import environment
from article_rec_assets.settings.sites import load_sites
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_assets_tests.recommenders.clicks import HAND, T0, log_of

# The image and podman (containers.py), for the tests that run containers.
pytest_plugins = ["article_rec_assets_tests.containers"]

REPO = Path(__file__).resolve().parents[1]
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


# Enriched-TSV positions as CONTRACT.md section 2 gives them (page_urlhost at Snowplow's own
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


def _postgres_or_skip() -> None:
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
    _postgres_or_skip()
    schema = f"article_rec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A fresh PostgreSQL database for a Dagster instance's storage, dropped afterwards."""
    _postgres_or_skip()
    name = f"article_rec_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
    shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", home / "dagster.yaml")
    server = urlsplit(POSTGRES_DSN)
    monkeypatch.setenv("DAGSTER_PG_HOST", server.hostname or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", server.username or "root")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    monkeypatch.setenv("DAGSTER_PG_DB", database)
    return home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of generated clickstream and catalogue for every demo site."""
    data_dir = tmp_path_factory.mktemp("demo_data")
    for site in load_sites().values():
        generate_site(site, data_dir, DEMO_END - timedelta(days=DEMO_DAYS), DEMO_END)
    return data_dir


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for the whole session: its URL."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        # An HTTP proxy from the environment must not come between boto3 and localhost.
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"])))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str):
    """A plain boto3 client on the test server, to set up buckets and objects."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=S3_TEST_REGION, **S3_TEST_CREDENTIALS)


@pytest.fixture
def s3_resource(s3_endpoint: str) -> S3Resource:
    return s3_test_resource(s3_endpoint)


@pytest.fixture(scope="session")
def s3_demo_buckets(demo_data_dir: Path, s3_client) -> dict[str, str]:
    """The demo sites' local buckets (`demo_data_dir/buckets/<bucket>/...`) uploaded to the test
    server under the same bucket names and prefixes: site name -> bucket."""
    buckets = {}
    for site in load_sites().values():
        upload_folder(s3_client, demo_data_dir / "buckets" / site.events.bucket, site.events.bucket)
        buckets[site.name] = site.events.bucket
    return buckets


@pytest.fixture
def hand():
    """The hand-made click log of the recommender and evaluation tests, with its training clicks."""
    log = log_of(HAND)
    return log, training_clicks(log, T0, train_days=1)


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A local HTTP server that keeps every JSON body POSTed to it; its URL is the alerts' webhook."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(environment.ALERT_WEBHOOK_URL_VAR, f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv(environment.UI_URL_VAR, "http://dagster.example:3000")
    yield received
    server.shutdown()

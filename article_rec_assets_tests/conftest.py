"""Shared fixtures: a PostgreSQL schema or database of our own, a generated demo clickstream, an
S3 API (moto's server, over real HTTP on localhost) holding the same clickstream, a webhook, and
(containers.py) the image and podman. Helpers that are not fixtures are in support/."""

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
import psycopg
import pytest
from dagster_aws.s3 import S3Resource

from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.settings import environment
from article_rec_assets.settings.sites import load_sites
from article_rec_assets_tests.recommenders.clicks import HAND, T0, log_of
from article_rec_assets_tests.support import (
    DEMO_DAYS,
    DEMO_END,
    POSTGRES_DSN,
    S3_TEST_CREDENTIALS,
    S3_TEST_REGION,
    postgres_or_skip,
    postgres_schema_url,
    s3_test_resource,
    upload_folder,
)
from article_rec_demo.generator.clickstream import generate_site

# The image and podman (containers.py), for the tests that run containers.
pytest_plugins = ["article_rec_assets_tests.support.containers"]

# A test that takes one of these fixtures, or a parameter of this name, is of that kind (the
# modules that reach PostgreSQL or S3 otherwise mark themselves).
KIND_FIXTURES = {
    "postgres": {"postgres_url", "dagster_database"},
    "s3": {"s3_endpoint", "s3_client", "s3_resource", "s3_demo_buckets"},
}
KIND_PARAMETERS = {"postgres": "postgresql", "s3": "s3"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        parameters = [
            v for v in getattr(getattr(item, "callspec", None), "params", {}).values() if isinstance(v, str)
        ]
        for kind, names in KIND_FIXTURES.items():
            if fixtures & names or KIND_PARAMETERS[kind] in parameters:
                item.add_marker(kind)


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A fresh PostgreSQL database for a Dagster instance's storage, dropped afterwards."""
    postgres_or_skip()
    name = f"article_rec_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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

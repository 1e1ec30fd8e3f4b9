"""The event bucket read from S3 over real HTTP (moto's server on localhost): the same objects as the
local folder, every page of a listing, transient errors retried, and failures that stay failures.
Faults are injected by a tiny HTTP proxy between boto3 and the S3 server."""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from dagster import Definitions, EnvVar, build_resources

from article_rec_assets import definitions
from article_rec_assets.definitions import resources_for_environment
from article_rec_assets.ingestion.bucket import site_bucket_dir
from article_rec_assets.resources import EventBucket, EventReadError, s3_attempts
from article_rec_assets.schedules import JOBS, SCHEDULES
from article_rec_assets.settings import environment
from article_rec_assets.settings.sites import SiteConfig, load_sites
from article_rec_assets_tests.support import DEMO_END, s3_test_resource, upload_folder, upload_objects

SITE = load_sites()["demo-tribune"]
HOUR = datetime(2026, 3, 3, 10, tzinfo=UTC)
ENV_VARS = (
    environment.EVENTS_SOURCE_VAR,
    environment.S3_ENDPOINT_URL_VAR,
    environment.S3_REGION_VAR,
    environment.S3_MAX_ATTEMPTS_VAR,
    environment.AWS_ACCESS_KEY_ID_VAR,
    environment.AWS_SECRET_ACCESS_KEY_VAR,
    environment.AWS_SESSION_TOKEN_VAR,
)


def site_in(bucket: str, prefix: str = "") -> SiteConfig:
    return SITE.model_copy(
        update={"events": SITE.events.model_copy(update={"bucket": bucket, "prefix": prefix})}
    )


def new_bucket() -> str:
    return f"events-{uuid.uuid4().hex[:12]}"


def hour_key(hour: datetime, name: str, prefix: str = "") -> str:
    return f"{prefix}{hour:enriched/good/%Y/%m/%d/%H}/{name}"


class FaultyProxy:
    """A tiny HTTP proxy in front of the S3 server. The first `failures` requests it is told to
    break (GET object requests, or every request with `all_requests`) get a 503 (`mode="503"`) or
    half of their body before the connection closes (`mode="truncate"`); `failures=None` breaks
    all of them. Everything else is forwarded as it is."""

    def __init__(
        self, upstream: str, failures: int | None, mode: str = "503", all_requests: bool = False
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.failures, self.mode, self.all_requests = failures, mode, all_requests
        self.lock = threading.Lock()
        self.object_gets = self.list_requests = self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.handle(self)

            do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault(self, request: BaseHTTPRequestHandler) -> str | None:
        is_list = "list-type=" in urlsplit(request.path).query
        is_object_get = request.command == "GET" and not is_list and "/enriched/good/" in request.path
        with self.lock:
            self.list_requests += is_list
            self.object_gets += is_object_get
            if not (is_object_get or self.all_requests):
                return None
            if self.failures is not None and self.failed >= self.failures:
                return None
            self.failed += 1
            return self.mode

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        fault = self._fault(request)
        if fault == "503":
            status, reason, headers = 503, "Service Unavailable", [("Content-Type", "application/xml")]
            data = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
                b"<Message>injected by the test proxy</Message></Error>"
            )
        else:
            upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=10)
            skip = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}
            upstream.request(
                request.command,
                request.path,
                body=body,
                headers={k: v for k, v in request.headers.items() if k.lower() not in skip},
            )
            response = upstream.getresponse()
            data = response.read()
            upstream.close()
            status, reason = response.status, response.reason
            skip |= {"content-length", "date", "server"}
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
        request.send_response(status, reason)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        if fault == "truncate":
            request.send_header("Connection", "close")
            request.close_connection = True
            data = data[: len(data) // 2]
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


@pytest.fixture
def small_bucket(s3_client) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Four objects over two hour folders (HOUR and the next), under a prefix."""
    bucket, prefix = new_bucket(), "snowplow/"
    objects = {
        hour_key(HOUR + timedelta(hours=h), f"part-{i}.gz", prefix): f"object {h}-{i}\n".encode() * 50
        for h in range(2)
        for i in range(2)
    }
    upload_objects(s3_client, bucket, objects)
    yield bucket, objects


def test_s3_window_is_the_local_folder_window(demo_data_dir: Path, s3_client, s3_resource) -> None:
    """The demo site's bucket folder uploaded under another prefix reads back as the same objects,
    in the same order, as from the local folder; the prefix's slashes do not matter."""
    bucket, local_folder = new_bucket(), site_bucket_dir(demo_data_dir, SITE)
    upload_folder(s3_client, local_folder, bucket, prefix="events/tribune")
    start, end = DEMO_END - timedelta(hours=8), DEMO_END - timedelta(hours=4)
    local = list(EventBucket(root_dir=str(demo_data_dir)).window_objects(SITE, start, end))
    s3 = list(EventBucket(s3=s3_resource).window_objects(site_in(bucket, "/events/tribune/"), start, end))
    assert len(local) >= 4
    local_root = local_folder.relative_to(demo_data_dir).as_posix() + "/"
    assert [key for key, _ in s3] == [
        f"s3://{bucket}/events/tribune/{key.removeprefix(local_root)}" for key, _ in local
    ]
    assert [data for _, data in s3] == [data for _, data in local]


def test_listing_reads_every_page_sorted_and_only_the_hour_folders_own_objects(
    s3_client, s3_endpoint: str
) -> None:
    bucket = new_bucket()
    names = [f"{n:02d}-{uuid.uuid4().hex[:6]}.gz" for n in (7, 3, 5, 1, 6, 2, 4)]
    objects = {hour_key(HOUR, name): name.encode() for name in names}
    others = {
        hour_key(HOUR, "").rstrip("/") + "/": b"",  # a console-made folder marker
        hour_key(HOUR, "sub/nested.gz"): b"not this hour's own object",
        hour_key(HOUR - timedelta(hours=1), "before.gz"): b"before the window",
        hour_key(HOUR + timedelta(hours=1), "after.gz"): b"the window's end is exclusive",
    }
    upload_objects(s3_client, bucket, {**objects, **others})
    with FaultyProxy(s3_endpoint, failures=0) as proxy:
        events = EventBucket(s3=s3_test_resource(proxy.url), list_page_size=2, max_concurrent_reads=3)
        got = list(events.window_objects(site_in(bucket), HOUR, HOUR + timedelta(hours=1)))
        assert proxy.list_requests >= 4  # 7 keys, 2 a page
        assert events.hour_objects(site_in(bucket), HOUR) == sorted(objects)
    assert got == [(f"s3://{bucket}/{key}", objects[key]) for key in sorted(objects)]


def test_empty_and_missing_hour_folders_are_an_empty_window(s3_client, s3_resource) -> None:
    bucket = new_bucket()
    upload_objects(s3_client, bucket, {hour_key(HOUR, "").rstrip("/") + "/": b""})
    events = EventBucket(s3=s3_resource)
    assert list(events.window_objects(site_in(bucket), HOUR, HOUR + timedelta(hours=2))) == []
    assert events.hour_objects(site_in(bucket, "no/such/prefix"), HOUR) == []


def test_a_missing_bucket_is_an_error_not_an_empty_window(s3_resource) -> None:
    bucket = new_bucket()
    with pytest.raises(EventReadError, match=rf"s3://{bucket}/enriched/good/2026/03/03/10/.*NoSuchBucket"):
        list(EventBucket(s3=s3_resource).window_objects(site_in(bucket), HOUR, HOUR + timedelta(hours=2)))


def test_transient_errors_are_retried_until_the_window_is_complete(small_bucket, s3_endpoint: str) -> None:
    bucket, objects = small_bucket
    site = site_in(bucket, "snowplow")
    # One object at a time, so the same GET fails 3 times, then succeeds on its 4th of 4 attempts
    # (`max_attempts` is botocore's count of retries after the first attempt: s3_attempts).
    with FaultyProxy(s3_endpoint, failures=3) as proxy:
        s3 = s3_test_resource(proxy.url, max_attempts=3)
        assert s3_attempts(s3) == 4
        events = EventBucket(s3=s3, max_concurrent_reads=1)
        got = list(events.window_objects(site, HOUR, HOUR + timedelta(hours=2)))
    assert got == [(f"s3://{bucket}/{key}", objects[key]) for key in sorted(objects)]
    assert proxy.failed == 3
    assert proxy.object_gets == len(objects) + 3


def test_bodies_cut_off_mid_download_are_fetched_again(small_bucket, s3_endpoint: str) -> None:
    bucket, objects = small_bucket
    with FaultyProxy(s3_endpoint, failures=2, mode="truncate") as proxy:
        events = EventBucket(
            s3=s3_test_resource(proxy.url, max_attempts=2),
            max_concurrent_reads=1,
            read_retry_backoff_seconds=0.01,
        )
        got = list(events.window_objects(site_in(bucket, "snowplow"), HOUR, HOUR + timedelta(hours=2)))
    assert got == [(f"s3://{bucket}/{key}", objects[key]) for key in sorted(objects)]
    assert proxy.failed == 2


@pytest.mark.parametrize("mode", ["503", "truncate"])
def test_a_read_that_keeps_failing_fails_the_window_naming_bucket_key_and_window(
    small_bucket, s3_endpoint: str, mode: str
) -> None:
    bucket, objects = small_bucket
    first_key = sorted(objects)[0]
    started = time.monotonic()
    with FaultyProxy(s3_endpoint, failures=None, mode=mode) as proxy:
        events = EventBucket(
            s3=s3_test_resource(proxy.url, max_attempts=1),  # 2 attempts in all
            max_concurrent_reads=1,
            read_retry_backoff_seconds=0.01,
        )
        with pytest.raises(EventReadError) as raised:
            list(events.window_objects(site_in(bucket, "snowplow"), HOUR, HOUR + timedelta(hours=2)))
    message = str(raised.value)
    assert f"s3://{bucket}/{first_key}" in message
    assert "window [2026-03-03 10:00, 2026-03-03 12:00) of site 'demo-tribune'" in message
    assert proxy.failed == 2  # both attempts of the first object, then nothing more
    if mode == "503":
        assert isinstance(raised.value.__cause__, ClientError)
        assert "ServiceUnavailable" in message and "after 2 attempts" in message
    else:
        assert "cut off 2 times" in message
    assert time.monotonic() - started < 10


def test_a_listing_that_keeps_failing_fails_the_window(small_bucket, s3_endpoint: str) -> None:
    bucket, _ = small_bucket
    with FaultyProxy(s3_endpoint, failures=None, all_requests=True) as proxy:
        events = EventBucket(s3=s3_test_resource(proxy.url, max_attempts=1))
        with pytest.raises(EventReadError, match="could not list") as raised:
            list(events.window_objects(site_in(bucket, "snowplow"), HOUR, HOUR + timedelta(hours=2)))
    assert f"s3://{bucket}/snowplow/enriched/good/2026/03/03/10/" in str(raised.value)
    assert "window [2026-03-03 10:00, 2026-03-03 12:00)" in str(raised.value)
    assert proxy.list_requests == 2 and proxy.object_gets == 0


# Resources chosen from the environment


@pytest.fixture
def clean_environment(monkeypatch, tmp_path) -> pytest.MonkeyPatch:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return monkeypatch


def validate(resources: dict) -> None:
    Definitions.validate_loadable(
        Definitions(
            assets=definitions.all_assets,
            jobs=JOBS,
            schedules=SCHEDULES,
            resources=resources,
        )
    )


def test_s3_is_chosen_from_the_environment(clean_environment: pytest.MonkeyPatch) -> None:
    env = clean_environment
    env.setenv(environment.S3_ENDPOINT_URL_VAR, "http://minio.internal:9000")
    env.setenv(environment.S3_REGION_VAR, "eu-west-1")
    env.setenv(environment.S3_MAX_ATTEMPTS_VAR, "7")
    env.setenv(environment.AWS_ACCESS_KEY_ID_VAR, "AKIAEXAMPLE")
    env.setenv(environment.AWS_SECRET_ACCESS_KEY_VAR, "not-a-real-secret")
    resources = resources_for_environment()
    s3 = resources["event_bucket"].s3
    assert s3 is not None
    assert (s3.endpoint_url, s3.region_name, s3_attempts(s3)) == (
        "http://minio.internal:9000",
        "eu-west-1",
        7,
    )
    # The variables' names, never their values.
    assert s3.aws_access_key_id == EnvVar(environment.AWS_ACCESS_KEY_ID_VAR)
    assert s3.aws_secret_access_key == EnvVar(environment.AWS_SECRET_ACCESS_KEY_VAR)
    assert s3.aws_session_token is None
    validate(resources)

    # The source alone, on AWS itself: boto3's default credential chain and region.
    for var in (environment.S3_ENDPOINT_URL_VAR, environment.S3_REGION_VAR, environment.S3_MAX_ATTEMPTS_VAR):
        env.delenv(var)
    env.delenv(environment.AWS_ACCESS_KEY_ID_VAR)
    env.delenv(environment.AWS_SECRET_ACCESS_KEY_VAR)
    env.setenv(environment.EVENTS_SOURCE_VAR, "s3")
    resources = resources_for_environment()
    s3 = resources["event_bucket"].s3
    assert (s3.endpoint_url, s3.region_name, s3_attempts(s3)) == (
        None,
        None,
        environment.DEFAULT_S3_MAX_ATTEMPTS,
    )
    assert (s3.aws_access_key_id, s3.aws_secret_access_key) == (None, None)
    validate(resources)


def test_the_local_folder_stays_the_default(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = clean_environment
    env.setenv(environment.DATA_DIR_VAR, str(tmp_path / "data"))
    bucket = resources_for_environment()["event_bucket"]
    assert (bucket.s3, bucket.root_dir) == (None, str(tmp_path / "data"))
    # An explicit `local` wins over a configured endpoint; anything else is refused.
    env.setenv(environment.S3_ENDPOINT_URL_VAR, "http://minio.internal:9000")
    env.setenv(environment.EVENTS_SOURCE_VAR, "local")
    assert resources_for_environment()["event_bucket"].s3 is None
    env.setenv(environment.EVENTS_SOURCE_VAR, "gcs")
    with pytest.raises(ValueError, match=environment.EVENTS_SOURCE_VAR):
        resources_for_environment()


def test_the_resource_from_the_environment_reads_the_s3_server(
    clean_environment: pytest.MonkeyPatch, small_bucket, s3_endpoint: str
) -> None:
    """EnvVar credentials resolve when Dagster builds the resource, and the window comes from S3."""
    bucket, objects = small_bucket
    env = clean_environment
    env.setenv(environment.S3_ENDPOINT_URL_VAR, s3_endpoint)
    env.setenv(environment.S3_REGION_VAR, "us-east-1")
    env.setenv(environment.AWS_ACCESS_KEY_ID_VAR, "testing")
    env.setenv(environment.AWS_SECRET_ACCESS_KEY_VAR, "testing")
    with build_resources({"event_bucket": resources_for_environment()["event_bucket"]}) as built:
        assert built.event_bucket.s3.aws_access_key_id == "testing"
        got = list(
            built.event_bucket.window_objects(site_in(bucket, "snowplow"), HOUR, HOUR + timedelta(hours=2))
        )
    assert got == [(f"s3://{bucket}/{key}", objects[key]) for key in sorted(objects)]

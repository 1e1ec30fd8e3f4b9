"""The real Dagster webserver over a Dagster home holding a real materialized run, driven by
Debian's Chromium, headless: what an operator sees in the UI."""

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from article_rec_assets.assets.ingestion import MALFORMED_BLOCK, build
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.io_managers import ParquetIOManager
from article_rec_assets.partitions import SITES, site_prefix, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets_tests.support import DEMO_END

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[1]
SITE = "demo-tribune"
WINDOW = DEMO_END - timedelta(hours=4)
WEBSERVER = str(Path(sys.executable).parent / "dagster-webserver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_or_skip() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Dagster home with one window ingested whose blocking malformed-share check failed
    (garbage added to one hour folder), served by dagster-webserver: its base URL."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    bucket = root / "data"
    shutil.copytree(demo_data_dir, bucket)
    folder = site_bucket_dir(bucket, SITES[SITE]) / hour_folder(WINDOW)
    garbage = b"\n".join(b"{not json %d" % i for i in range(4000))
    (folder / "garbage.jsonl.gz").write_bytes(gzip.compress(garbage))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ARTICLE_REC_DATA_DIR": str(bucket),
        "SERVING_DATABASE_URL": f"sqlite:///{root / 'serving.db'}",
    }
    with DagsterInstance.from_config(str(home)) as instance:
        ingest_window, _ = build(SITE)
        result = materialize(
            [ingest_window],
            partition_key=window_key(WINDOW),
            instance=instance,
            # The storage the webserver's instance has: what the definitions use.
            resources={
                "event_bucket": EventBucket(root_dir=str(bucket)),
                "table_io_manager": ParquetIOManager(),
            },
            raise_on_error=False,
        )
        failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
        assert MALFORMED_BLOCK in {e.check_name for e in failed}

    with serving(home, env, root / "webserver.log") as url:
        yield url


@contextmanager
def serving(home: Path, env: dict, log_path: Path, *options: str) -> Iterator[str]:
    """dagster-webserver (with `options`) over `home` on a free loopback port: its base URL."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [WEBSERVER, "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml"), *options],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"webserver did not start: {log_path.read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def render(url: str, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (and its GraphQL answers came back)."""
    chromium = chromium_or_skip()
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    args = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1500,1000"]
    args += ["--virtual-time-budget=12000", "--run-all-compositor-stages-before-draw"]
    if screenshot is not None:
        subprocess.run(
            [*args, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120
        )
    done = subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True, timeout=120, text=True)
    return done.stdout


def artifacts_dir(tmp_path: Path) -> Path:
    """Screenshots are kept outside the repository: ARTICLE_REC_TEST_ARTIFACTS, else pytest's tmp."""
    folder = Path(os.environ.get("ARTICLE_REC_TEST_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_asset_graph_shows_every_stage(webserver: str, tmp_path: Path) -> None:
    screenshot = artifacts_dir(tmp_path) / "asset-graph.png"
    lineage = render(f"{webserver}/asset-groups", tmp_path, screenshot)
    for site in SITES:  # a group per site
        assert site_prefix(site) in lineage, site
    catalog = render(f"{webserver}/assets", tmp_path)
    for name in ("raw_events", "sessionized_interactions", "trained_model", "published_recommendations"):
        assert name in catalog, name
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_a_partitioned_asset_shows_its_window_and_the_failed_check(webserver: str, tmp_path: Path) -> None:
    key = window_key(WINDOW)
    asset = f"{webserver}/assets/{site_prefix(SITE)}/raw_events"
    dom = render(f"{asset}?view=partitions", tmp_path)
    assert "raw_events" in dom
    assert site_prefix(SITE) in dom
    checks = render(
        f"{asset}?view=checks&checkDetail={MALFORMED_BLOCK}",
        tmp_path,
        artifacts_dir(tmp_path) / "checks.png",
    )
    assert MALFORMED_BLOCK in checks
    assert "of the window's lines are unusable" in checks, "the failed check's explanation is not shown"
    assert key in checks


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


PERMISSIONS = "{ permissions { permission value } }"
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename ... on UnauthorizedError { message } }
}
"""


def test_the_read_only_webserver_shows_but_refuses_to_launch(webserver: str, tmp_path: Path) -> None:
    """deploy/docker-compose.yaml's `webserver_readonly`: `--read-only` over the same instance. Its
    GraphQL API refuses a launch, where the operating webserver grants it."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SERVING_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    with serving(home, env, tmp_path / "readonly.log", "--read-only") as read_only:
        granted = {p["permission"]: p["value"] for p in graphql(read_only, PERMISSIONS)["permissions"]}
        assert granted["launch_pipeline_execution"] is False and granted["wipe_assets"] is False
        job = f"{site_prefix(SITE)}__ingest_window_job"
        params = {
            "selector": {
                "repositoryLocationName": "article_rec_assets",
                "repositoryName": "__repository__",
                "jobName": job,
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": window_key(WINDOW)}]},
        }
        refused = graphql(read_only, LAUNCH, {"params": params})["launchRun"]
        assert refused["__typename"] == "UnauthorizedError", refused
        runs = graphql(read_only, "{ runsOrError { ... on Runs { results { runId } } } }")
        assert runs["runsOrError"]["results"] == []  # nothing was launched
    operating = {p["permission"]: p["value"] for p in graphql(webserver, PERMISSIONS)["permissions"]}
    assert operating["launch_pipeline_execution"] is True

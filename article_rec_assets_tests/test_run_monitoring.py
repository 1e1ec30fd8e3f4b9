"""A killed run never blocks its site for good: with the instance files we ship (one run per
site, run monitoring, their run launcher), the daemon's own monitoring fails a run whose worker is
gone, and the queue daemon then starts the site's next run. On SQLite (the embedded default) and
PostgreSQL (production).

The default launcher's health check (`LocalWorkerRunLauncher`) is exercised twice: with the site's
real jobs and the worker's start written as Dagster's worker writes it (the code location is
loaded in this process, so no code server launches there), and end to end with a real
`dagster code-server start` (what `dagster dev` and the image run), a real run worker, a reload
of the code server and a `kill -9` of the code server with its workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._grpc.client import DagsterGrpcClient
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from article_rec_assets.partitions import site_pool, window_key
from article_rec_assets.run_heartbeat import HEARTBEAT_TAG, STALE_AFTER_SECONDS
from article_rec_assets.run_launcher import (
    LocalWorkerRunLauncher,
    Worker,
    is_local_address,
    process_is_worker,
)
from article_rec_assets.sensors import ensure_site_pools
from article_rec_assets_tests.support import DEMO_END
from article_rec_assets_tests.support.operating import (
    LOG,
    KilledLocalWorkerLauncher,
    Operated,
    instance_on,
    operated_instance,
    postgres_or_sqlite_url,
    report_worker_started,
)

ROOT = Path(__file__).resolve().parents[1]
SITE = "demo-tribune"
NOW = DEMO_END - timedelta(hours=1)
SHIPPED_LAUNCHER = {"module": "article_rec_assets.run_launcher", "class": "LocalWorkerRunLauncher"}
# The embedded default's file, the production file, and the worker a kill leaves: on the daemon's
# host (`dagster dev`, `make ui`), in another container (the compose layout), an ECS task.
CASES = {
    "embedded-default": ("sqlite", ROOT / "dagster.yaml", "localhost"),
    "production-default-launcher-compose": ("postgresql", ROOT / "deploy" / "dagster.yaml", "code_location"),
    "production-ecs": ("postgresql", ROOT / "deploy" / "ecs" / "dagster.yaml", "ecs"),
}


def shipped(path: Path, worker: str) -> dict:
    """The run coordinator, concurrency (one run per site's pool) and run monitoring of a shipped
    instance file, with a launcher whose workers are killed once started: the file's own launcher
    with the code server's part done in this process, or, for ECS, one that answers as ECS does."""
    config = yaml.safe_load(path.read_text())
    if worker == "ecs":
        launcher = {
            "module": "article_rec_assets_tests.support.operating",
            "class": "KilledWorkerLauncher",
            "config": {"health_checks": True},
        }
    else:
        assert config["run_launcher"] == SHIPPED_LAUNCHER
        assert issubclass(KilledLocalWorkerLauncher, LocalWorkerRunLauncher)
        launcher = {
            "module": "article_rec_assets_tests.support.operating",
            "class": "KilledLocalWorkerLauncher",
            "config": {"code_server_host": worker},
        }
    return {
        "run_coordinator": config["run_coordinator"],
        "concurrency": config["concurrency"],
        "run_monitoring": config["run_monitoring"],
        "run_launcher": launcher,
    }


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.postgres] if storage == "postgresql" else [])
        for name, (storage, _, _) in CASES.items()
    ]
)
def case(
    request: pytest.FixtureRequest, demo_data_dir: Path, tmp_path: Path
) -> Iterator[tuple[Operated, dict]]:
    storage, path, worker = CASES[request.param]
    config = yaml.safe_load(path.read_text())
    with (
        postgres_or_sqlite_url(storage, tmp_path) as serving_url,
        operated_instance(storage, demo_data_dir, tmp_path, serving_url, shipped(path, worker)) as op,
    ):
        # The launcher sees a worker on its own host, or an ECS task; not one in another container.
        yield op, {"sees_worker": worker != "code_location", **config["run_monitoring"]}


def status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_killed_run_is_failed_by_run_monitoring_and_its_site_runs_again(case) -> None:
    op, monitoring = case
    assert op.instance.run_monitoring_enabled
    first, second = (
        op.launch_job(SITE, "recommendations_job", window_key(NOW - timedelta(hours=h)), NOW, drain=False)
        for h in (4, 2)
    )
    for _ in range(3):  # the queue daemon, as it runs every few seconds
        op.drain_queue(NOW, max_iterations=1, expect_empty=False)
    # The first run's worker started, then was killed: it stays STARTED and holds the site.
    assert (status(op.instance, first), status(op.instance, second)) == (
        DagsterRunStatus.STARTED,
        DagsterRunStatus.QUEUED,
    )

    # The monitoring daemon: a launcher that sees the worker gone fails the run at its first poll;
    # one that cannot see it, at the first poll after the worker's heartbeat went stale.
    soon = NOW + timedelta(seconds=monitoring["poll_interval_seconds"])
    with freeze_time(soon):
        list(execute_run_monitoring_iteration(op.workspace, LOG))
    if not monitoring["sees_worker"]:
        assert status(op.instance, first) == DagsterRunStatus.STARTED  # its last beat is recent
        stale = NOW + timedelta(seconds=STALE_AFTER_SECONDS + monitoring["poll_interval_seconds"])
        assert stale < NOW + timedelta(seconds=monitoring["max_runtime_seconds"]) / 10
        with freeze_time(stale):
            list(execute_run_monitoring_iteration(op.workspace, LOG))
    assert status(op.instance, first) in (
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
        DagsterRunStatus.CANCELING,
    )

    op.drain_queue(NOW, max_iterations=3, expect_empty=False)
    assert status(op.instance, second) == DagsterRunStatus.STARTED  # the site's next run is no longer stuck


# --- End to end: a real code server and run worker --------------------------------------------

LOCATION = "stand_in"
# A stand-in for a site's job: one asset in the site's pool whose step outlasts the test (bounded,
# so that a worker the test failed to kill still ends), run in the worker process itself.
STAND_IN_DEFINITIONS = """
import time

from dagster import Definitions, asset, define_asset_job, in_process_executor


@asset(pool={pool!r})
def long_step() -> None:
    time.sleep(180)


defs = Definitions(
    assets=[long_step], jobs=[define_asset_job("site_job", [long_step])], executor=in_process_executor
)
"""
REAL_CASES = {
    "embedded-default": ("sqlite", ROOT / "dagster.yaml"),
    "production-default-launcher": ("postgresql", ROOT / "deploy" / "dagster.yaml"),
}


class CodeServer:
    """`dagster code-server start` on a unix socket, as `dagster dev` starts it, in a process
    group of its own: its code servers and their run workers are killed with it."""

    def __init__(self, definitions: Path, socket: str) -> None:
        self.definitions = definitions
        self.socket = socket
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "dagster", "code-server", "start", "-s", self.socket),
                *("-f", str(self.definitions), "--location-name", LOCATION),
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().ping("ready")
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the code server did not start") from None
                time.sleep(0.1)

    def client(self) -> DagsterGrpcClient:
        return DagsterGrpcClient(socket=self.socket)

    def kill(self) -> None:
        """`kill -9` of the code server, its code servers and their run workers."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def code_server(definitions: Path) -> Iterator[CodeServer]:
    # A short folder: a unix socket's path is limited to about 100 characters.
    with tempfile.TemporaryDirectory(prefix="code-server-") as folder:
        server = CodeServer(definitions, str(Path(folder) / "grpc.sock"))
        try:
            server.start()
            yield server
        finally:
            server.kill()


def wait_for(instance: DagsterInstance, run_id: str, wanted: DagsterRunStatus, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while status(instance, run_id) != wanted:
        assert time.monotonic() < deadline, f"run {run_id} is {status(instance, run_id)}, not {wanted}"
        time.sleep(0.1)


def launch(workspace: WorkspaceProcessContext) -> str:
    """What the UI sends to launch the stand-in job: the run id (queued)."""
    context = workspace.create_request_context()
    repository = next(iter(context.get_code_location(LOCATION).get_repositories().values()))
    selector = {"repositoryLocationName": LOCATION, "repositoryName": repository.name, "jobName": "site_job"}
    result = execute_dagster_graphql(
        context, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": {"selector": selector}}
    )
    launched = result.data["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


@contextmanager
def stand_in_site(
    storage: str, path: Path, tmp_path: Path
) -> Iterator[tuple[DagsterInstance, CodeServer, WorkspaceProcessContext]]:
    """An instance with the shipped file's queue, concurrency, run monitoring and launcher, on
    `storage`, and a real code server of the stand-in job, loaded over gRPC as the daemon loads it."""
    config = yaml.safe_load(path.read_text())
    assert config["run_launcher"] == SHIPPED_LAUNCHER
    settings = {k: config[k] for k in ("run_coordinator", "concurrency", "run_monitoring", "run_launcher")}
    definitions = tmp_path / "stand_in.py"
    definitions.write_text(STAND_IN_DEFINITIONS.format(pool=site_pool(SITE)))
    with instance_on(storage, tmp_path, settings) as instance, code_server(definitions) as server:
        try:
            target = GrpcServerTarget(
                host="localhost", port=None, socket=server.socket, location_name=LOCATION
            )
            with create_test_daemon_workspace_context(target, instance) as workspace:
                ensure_site_pools(instance)  # the `site_pools` sensor's first tick
                yield instance, server, workspace
        finally:
            # Its workers die with it; their runs are closed so that the instance's teardown does
            # not wait for them.
            server.kill()
            for record in instance.get_run_records(RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)):
                instance.report_run_failed(record.dagster_run, "the test's code server was stopped")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.postgres] if storage == "postgresql" else [])
        for name, (storage, _) in REAL_CASES.items()
    ],
)
def test_the_shipped_launcher_keeps_a_live_worker_and_fails_one_killed_with_its_code_server(
    name: str, tmp_path: Path
) -> None:
    storage, path = REAL_CASES[name]
    queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
    with stand_in_site(storage, path, tmp_path) as (instance, server, workspace):
        launcher = instance.run_launcher
        assert type(launcher) is LocalWorkerRunLauncher
        first, second = launch(workspace), launch(workspace)
        list(queue.run_iteration(workspace))
        wait_for(instance, first, DagsterRunStatus.STARTED)
        assert status(instance, second) == DagsterRunStatus.QUEUED  # one run per site
        run = instance.get_run_by_id(first)
        worker = launcher.worker(run)
        assert worker is not None and worker.pid != server.process.pid
        assert json.loads(run.tags[GRPC_INFO_TAG])["socket"] == server.socket

        # Alive: the poll keeps it; so after "Reload definitions", whose new code server does not
        # know the run the old one still runs (its word alone would fail a healthy run).
        list(execute_run_monitoring_iteration(workspace, LOG))
        assert status(instance, first) == DagsterRunStatus.STARTED
        assert launcher.code_server_runs(run)
        server.client().reload_code(timeout=60)
        assert not launcher.code_server_runs(run)
        list(execute_run_monitoring_iteration(workspace, LOG))
        assert status(instance, first) == DagsterRunStatus.STARTED

        # `dagster dev` (or the machine) killed mid-run: nothing else fails the run; the first
        # monitoring poll after the worker is gone does.
        server.kill()
        deadline = time.monotonic() + 10
        while process_is_worker(worker):  # SIGKILL lands a moment later (a zombie counts as gone)
            assert time.monotonic() < deadline, f"worker {worker.pid} outlived its code server"
            time.sleep(0.05)
        assert status(instance, first) == DagsterRunStatus.STARTED
        list(execute_run_monitoring_iteration(workspace, LOG))
        assert status(instance, first) == DagsterRunStatus.FAILURE
        failure = instance.all_logs(first, of_type=DagsterEventType.RUN_FAILURE)[-1]
        assert f"the run's worker (pid {worker.pid}) is gone and no code server is running it" in (
            failure.message
        )

        # The code server back (`make ui` again): the site's next run starts.
        server.start()
        workspace.reload_code_location(LOCATION)
        list(queue.run_iteration(workspace))
        wait_for(instance, second, DagsterRunStatus.STARTED)


# --- The decision, piece by piece ---------------------------------------------------------------


def test_a_worker_is_a_live_process_of_its_pid_started_before_it_reported_itself() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert process_is_worker(Worker(sleeper.pid, reported_at=time.time()))
        if Path("/proc/self/stat").exists():
            # A process of that pid started an hour after the worker reported: the pid was reused.
            assert not process_is_worker(Worker(sleeper.pid, reported_at=time.time() - 3600))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not process_is_worker(Worker(sleeper.pid, reported_at=time.time()))  # gone

    exited = subprocess.Popen(["true"])
    if Path("/proc/self/stat").exists():
        deadline = time.monotonic() + 10
        while Path(f"/proc/{exited.pid}/stat").read_text().split(") ")[1][0] != "Z":  # not reaped yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not process_is_worker(Worker(exited.pid, reported_at=time.time()))  # a zombie
    exited.wait()


def test_only_a_code_server_on_this_host_makes_its_workers_pids_worth_looking_up() -> None:
    assert is_local_address({"host": "localhost", "socket": "/tmp/dagster-grpc.sock"})
    for host in ("localhost", "127.0.0.1", "::1"):
        assert is_local_address({"host": host, "port": 4000})
    for host in ("code_location", "10.0.0.5", "dagster-user-code.internal"):
        assert not is_local_address({"host": host, "port": 4000})


def test_without_a_worker_pid_or_a_local_code_server_the_launcher_cannot_tell(tmp_path: Path) -> None:
    """It answers RUNNING, and max_runtime_seconds decides: the daemon fails a run on any other
    answer, UNKNOWN included."""
    with instance_on("sqlite", tmp_path, {"run_launcher": SHIPPED_LAUNCHER}) as instance:
        launcher = instance.run_launcher
        no_pid = create_run_for_test(instance, status=DagsterRunStatus.STARTED)
        result = launcher.check_run_worker_health(no_pid)
        assert result.status == WorkerStatus.RUNNING and "no worker pid" in (result.msg or "")

        compose = {GRPC_INFO_TAG: json.dumps({"host": "code_location", "port": 4000})}
        remote = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags=compose)
        exited = subprocess.Popen(["true"])
        exited.wait()
        report_worker_started(instance, remote, exited.pid)  # a pid of this host that is gone
        result = launcher.check_run_worker_health(remote)
        assert result.status == WorkerStatus.RUNNING and "another host" in (result.msg or "")


def test_where_the_pid_cannot_be_looked_up_the_heartbeat_decides(tmp_path: Path) -> None:
    """A worker beside a code server on another host (the compose layout): alive while it beats,
    gone once its last beat is older than STALE_AFTER_SECONDS."""
    compose = {GRPC_INFO_TAG: json.dumps({"host": "code_location", "port": 4000})}
    with instance_on("sqlite", tmp_path, {"run_launcher": SHIPPED_LAUNCHER}) as instance:
        launcher = instance.run_launcher
        run = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags=compose)
        report_worker_started(instance, run, 999_999)
        with freeze_time(NOW):
            instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: NOW.isoformat()})
            run = instance.get_run_by_id(run.run_id)
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        with freeze_time(NOW + timedelta(seconds=STALE_AFTER_SECONDS - 1)):
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        with freeze_time(NOW + timedelta(seconds=STALE_AFTER_SECONDS + 1)):
            result = launcher.check_run_worker_health(run)
        assert result.status == WorkerStatus.FAILED and "has not beaten" in (result.msg or "")

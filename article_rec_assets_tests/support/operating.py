"""A Dagster instance run the way operators run it: the definitions loaded as a code location
(as `dagster dev` and the daemon load them), the schedule ticked by the daemon's own scheduler
code, runs and backfills launched through the UI's GraphQL API and the backfill daemon's logic.

Runs execute synchronously in this process (`SyncInMemoryRunLauncher`), on SQLite or PostgreSQL
instance storage, with the serving database of the same kind.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, Field, RunsFilter
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._time import get_current_datetime
from dagster_graphql.client.query import (
    LAUNCH_PARTITION_BACKFILL_MUTATION,
    LAUNCH_PIPELINE_EXECUTION_MUTATION,
)
from dagster_graphql.test.utils import execute_dagster_graphql

import article_rec_assets.definitions
from article_rec_assets.partitions import site_key
from article_rec_assets.run_heartbeat import HEARTBEAT_TAG
from article_rec_assets.run_launcher import WORKER_STARTED_PREFIX, LocalWorkerRunLauncher
from article_rec_assets.schedules import site_name
from article_rec_assets.sensors import ensure_site_pools
from article_rec_assets.settings import environment
from article_rec_assets_tests.support import POSTGRES_DSN, postgres_or_skip, postgres_schema_url

LOCATION = "article_rec_assets"
LOG = logging.getLogger("article_rec_assets_tests.support.operating")
SYNC_LAUNCHER = {
    "run_launcher": {
        "module": "dagster._core.launcher.sync_in_memory_run_launcher",
        "class": "SyncInMemoryRunLauncher",
    }
}


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the test server for one Dagster instance: its name."""
    postgres_or_skip()
    name = f"article_rec_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def postgres_or_sqlite_url(storage: str, folder: Path) -> Iterator[str]:
    """A serving database of the same kind as the instance storage."""
    if storage == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{folder / 'serving.db'}"
    else:
        with postgres_schema_url() as url:
            yield url


def postgres_storage(database: str) -> dict:
    server = urlsplit(POSTGRES_DSN)
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": server.hostname or "127.0.0.1",
                    "port": server.port or 5432,
                    "username": server.username or "root",
                    "password": "",
                    "db_name": database,
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    }


@dataclass
class Operated:
    instance: DagsterInstance
    workspace: WorkspaceProcessContext
    serving_url: str

    def request_context(self):
        return self.workspace.create_request_context()

    def repository(self):
        location = self.request_context().get_code_location(LOCATION)
        return next(iter(location.get_repositories().values()))

    def start_schedule(self, name: str, at: datetime) -> None:
        with freeze_time(at):
            self.instance.start_schedule(self.repository().get_schedule(name))

    def stop_schedule(self, name: str) -> None:
        schedule = self.repository().get_schedule(name)
        self.instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)

    def tick_scheduler(self, at: datetime, drain: bool = True) -> None:
        """One iteration of the scheduler daemon at `at`: due ticks evaluated, their runs queued,
        then (`drain`) the run queue worked off here."""
        with freeze_time(at):
            list(launch_scheduled_runs(self.workspace, LOG, at, iteration_times={}))
        if drain:
            self.drain_queue(at)

    def drain_queue(self, at: datetime, max_iterations: int = 50, expect_empty: bool = True) -> None:
        """Iterations of the run-queue daemon until no run is queued (each run is synchronous);
        `expect_empty=False`: that many iterations at most, whatever stays queued."""
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        for _ in range(max_iterations):
            if not self.runs(statuses=[DagsterRunStatus.QUEUED]):
                return
            with freeze_time(at):
                list(daemon.run_iteration(self.workspace))
        if expect_empty:
            raise AssertionError(f"runs still queued after {max_iterations} iterations of the queue daemon")

    def launch_job(
        self,
        site: str,
        job: str,
        window: str | None,
        at: datetime,
        drain: bool = True,
        tags: dict | None = None,
    ) -> str:
        """What the UI sends when an operator launches a site's job (for one window, where the
        job is partitioned): its run id."""
        repository = self.repository()
        run_tags = {**({"dagster/partition": window} if window else {}), **(tags or {})}
        with freeze_time(at):
            result = execute_dagster_graphql(
                self.request_context(),
                LAUNCH_PIPELINE_EXECUTION_MUTATION,
                {
                    "executionParams": {
                        "selector": {
                            "repositoryLocationName": LOCATION,
                            "repositoryName": repository.name,
                            "jobName": site_name(site, job),
                        },
                        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in run_tags.items()]},
                    }
                },
            )
        launched = result.data["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        if drain:
            self.drain_queue(at)
        return launched["run"]["runId"]

    def launch_backfill(
        self, site: str, partition_names: list[str], assets: list[str], at: datetime, **params
    ) -> str:
        """What the UI sends when an operator backfills a site's assets over its windows."""
        with freeze_time(at):
            result = execute_dagster_graphql(
                self.request_context(),
                LAUNCH_PARTITION_BACKFILL_MUTATION,
                {
                    "backfillParams": {
                        "partitionNames": partition_names,
                        "assetSelection": [{"path": site_key(site, a).path} for a in assets],
                        **params,
                    }
                },
            )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def run_backfill_daemon(self, backfill_id: str, at: datetime, max_iterations: int = 30) -> int:
        """Iterations of the backfill daemon until the backfill is done (runs are synchronous)."""
        for iteration in range(max_iterations):
            with freeze_time(at):
                list(execute_backfill_iteration(self.workspace, LOG))
            self.drain_queue(at)
            backfill = self.instance.get_backfill(backfill_id)
            if backfill.status.value != "REQUESTED":
                return iteration + 1
        raise AssertionError(f"backfill {backfill_id} still running after {max_iterations} iterations")

    def runs(self, **filters) -> list:
        return list(reversed(self.instance.get_runs(RunsFilter(**filters))))

    def failed_runs(self) -> list:
        return self.runs(statuses=[DagsterRunStatus.FAILURE])

    def latest_metadata(self, site: str, asset: str, partition: str | None = None) -> dict:
        """A window asset's newest materialization of `partition`; a model asset's newest."""
        records = self.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=site_key(site, asset), asset_partitions=[partition] if partition else None
            ),
            limit=1,
        ).records
        assert records, f"{asset} {partition} was never materialized"
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@contextmanager
def operated_instance(
    storage: str,
    data_dir: Path,
    tmp_path: Path,
    serving_url: str,
    overrides: dict | None = None,
    module: str = "article_rec_assets.definitions",
) -> Iterator[Operated]:
    """An instance on `storage` (`sqlite` or `postgresql`) with the definitions (`module`'s:
    the product's, or the demo's with its live sensor) loaded as a code location whose resources
    read `data_dir` and publish to `serving_url`; `overrides`: instance settings (a run launcher,
    the run coordinator, run monitoring) over the test defaults."""
    saved = {
        name: os.environ.get(name)
        for name in (environment.DATA_DIR_VAR, environment.SERVING_DATABASE_URL_VAR)
    }
    os.environ[environment.DATA_DIR_VAR] = str(data_dir)
    os.environ[environment.SERVING_DATABASE_URL_VAR] = serving_url
    # Resources are chosen when the definitions load: load them again under this environment.
    load_definitions_again()
    try:
        with _instance(storage, tmp_path, overrides or {}) as instance:
            target = InProcessWorkspaceLoadTarget(
                InProcessCodeLocationOrigin(
                    LoadableTargetOrigin(module_name=module, attribute="defs"),
                    location_name=LOCATION,
                )
            )
            with create_test_daemon_workspace_context(target, instance) as workspace:
                # The sensor daemon's first tick of `site_pools`, as when the daemon starts.
                ensure_site_pools(instance)
                yield Operated(instance, workspace, serving_url)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        load_definitions_again()


def load_definitions_again() -> None:
    """The definitions loaded afresh under the current environment, and Dagster's cache of the
    last job it reconstructed for an in-process run emptied: that cache is keyed by the job's
    module and name, so a run of the same job in the next instance would use the definitions (and
    the data folder) of the previous one."""
    importlib.reload(article_rec_assets.definitions)
    # The demo's definitions hold the product's as they were when it loaded: reloaded after them.
    if "article_rec_demo.definitions" in sys.modules:
        importlib.reload(sys.modules["article_rec_demo.definitions"])
    ReconstructableJob.get_repository_definition.cache_clear()
    ReconstructableJob.get_definition.cache_clear()


def instance_on(storage: str, tmp_path: Path, overrides: dict):
    """An instance on `storage` (`sqlite` or `postgresql`, a fresh database) with `overrides` over
    the test defaults (runs in this process), without a code location: a context manager."""
    return _instance(storage, tmp_path, overrides)


@contextmanager
def _instance(storage: str, tmp_path: Path, overrides: dict) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if storage == "sqlite":
        with instance_for_test(temp_dir=str(home), overrides={**SYNC_LAUNCHER, **overrides}) as instance:
            yield instance
    else:
        with (
            postgres_database() as database,
            instance_for_test(
                temp_dir=str(home), overrides={**SYNC_LAUNCHER, **postgres_storage(database), **overrides}
            ) as instance,
        ):
            yield instance


class KilledWorkerLauncher(RunLauncher, ConfigurableClass):
    """Launches a run whose worker starts (the run is STARTED) and is then killed: nothing more
    happens to it. With `health_checks`, it answers the daemon's health check as the ECS and
    Kubernetes launchers do for a stopped task (the worker is gone); without, it is like the
    default launcher, which cannot tell."""

    def __init__(self, inst_data: ConfigurableClassData | None = None, health_checks: bool = False) -> None:
        self._inst_data = inst_data
        self.health_checks = health_checks
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {"health_checks": Field(bool, is_required=False, default_value=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> KilledWorkerLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        self._instance.report_dagster_event(
            DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name),
            run_id=run.run_id,
        )

    def terminate(self, run_id: str) -> bool:
        return False

    @property
    def supports_check_run_worker_health(self) -> bool:
        return self.health_checks

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return CheckRunHealthResult(WorkerStatus.FAILED, "the task stopped (exit code 137: killed)")


def report_worker_started(instance: DagsterInstance, run: DagsterRun, pid: int) -> None:
    """The engine event a run worker writes as it starts (dagster/_grpc/impl.py), with `pid`."""
    instance.report_engine_event(
        f"{WORKER_STARTED_PREFIX} (pid: {pid}).", run, EngineEventData.in_process(pid)
    )


class KilledLocalWorkerLauncher(LocalWorkerRunLauncher):
    """The shipped default launcher with the code server's part of a launch done here: the run is
    tagged with its code server's address (`code_server_host`: `localhost`, a unix socket on this
    host; any other name, a code server on another host), its worker process starts, writes its pid
    as Dagster's worker does, reports the run STARTED, and is killed. The health check is
    `LocalWorkerRunLauncher`'s own."""

    def __init__(
        self, inst_data: ConfigurableClassData | None = None, code_server_host: str = "localhost"
    ) -> None:
        super().__init__(inst_data=inst_data)
        self.code_server_host = code_server_host

    @classmethod
    def config_type(cls) -> dict:
        return {"code_server_host": Field(str, is_required=False, default_value="localhost")}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict
    ) -> KilledLocalWorkerLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if self.code_server_host == "localhost":
            # What DefaultRunLauncher writes for `dagster dev`'s code servers; nothing listens there.
            address = {"host": "localhost", "socket": f"/nonexistent/{run.run_id}.sock"}
        else:
            address = {"host": self.code_server_host, "port": 4000}
        self._instance.add_run_tags(run.run_id, {GRPC_INFO_TAG: json.dumps(address)})
        worker = subprocess.Popen(["sleep", "60"])
        report_worker_started(self._instance, run, worker.pid)
        # Its first heartbeat, as the shipped executor's thread writes it when the run starts.
        stamp = get_current_datetime().isoformat(timespec="seconds")
        self._instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: stamp})
        self._instance.report_dagster_event(
            DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name),
            run_id=run.run_id,
        )
        worker.kill()
        worker.wait()

"""Every run in its own container: the production shape of deploy/docker, run end to end here.

`deploy/docker/run-local.sh` starts the code location in a container from the image and the
daemon on the host with `deploy/docker/dagster.yaml` (PostgreSQL storage, the queued coordinator
with one run per site, run monitoring, asset values and run logs in S3: moto's server); every run
is a container the daemon's launcher starts through podman's Docker Engine API. Through Dagster's
own machinery: a scheduled tick for two sites, a backfill of one site's history, a rerun of its
window, a run whose container is killed mid-run (failed by run monitoring, retried, published), and
a run that exceeds its memory (failed with the reason; the site's recommendations unchanged). The
published lists equal those the same doors publish on the embedded default, in-process.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from article_rec_assets.container_run_launcher import MEMORY_TAG, site_of_run
from article_rec_assets.partitions import window_key
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.schema import connect
from article_rec_assets.run_container import find_verdict
from article_rec_assets.schedules import RECOMMENDATIONS_JOB, SCHEDULE, WINDOW_ASSETS, site_name
from article_rec_assets.settings import environment
from article_rec_assets.settings.windows import newest_complete_window
from article_rec_assets_tests.support import (
    DEMO_END,
    POSTGRES_DSN,
    S3_TEST_CREDENTIALS,
    postgres_schema_url,
)
from article_rec_assets_tests.support.containers import IMAGE, run
from article_rec_assets_tests.support.operating import Operated, operated_instance, postgres_database

pytestmark = [pytest.mark.image, pytest.mark.postgres, pytest.mark.s3]

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "deploy" / "docker"
SITE_A, SITE_B = "demo-tribune", "demo-city-paper"
TICK = DEMO_END + timedelta(minutes=16)  # the 00:15 tick, evaluated a minute late
WINDOW = window_key(newest_complete_window(TICK))
HISTORY = [window_key(newest_complete_window(TICK) - timedelta(hours=2 * i)) for i in (3, 2, 1)]
# What `podman diff` may show of a run's container after it exited: the read-only catalogue
# mount's mount point, the hosts files the engine writes, and /tmp's staging of the run's log.
LEFT_ON_DISK = ("/catalogues", "/etc", "/tmp/dagster-compute-logs")
# Small enough that the site's run cannot finish in it, large enough for the run to start.
TOO_LITTLE_MEMORY = "300m"


def published(url: str, site: str) -> dict[str, list[tuple]]:
    engine = connect(url)
    try:
        lists = {}
        for model_type in ("article", "popularity"):
            model = current_model(engine, site, model_type)
            assert model is not None, (site, model_type)
            lists[model_type] = sorted(map(tuple, model.rows.astype(str).values.tolist()))
        return lists
    finally:
        engine.dispose()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.5)


def status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def finished(instance: DagsterInstance, run_ids: list[str]) -> bool:
    return all(status(instance, run_id).value in ("SUCCESS", "FAILURE", "CANCELED") for run_id in run_ids)


def messages(instance: DagsterInstance, run_id: str) -> str:
    """The run's log, with the errors of the steps that failed."""
    lines = []
    for event in instance.all_logs(run_id):
        lines.append(event.message or "")
        if event.dagster_event_type == DagsterEventType.STEP_FAILURE:
            lines.append(event.dagster_event.step_failure_data.error.to_string())
    return "\n".join(lines)


def event_time(instance: DagsterInstance, run_id: str, pick: Callable) -> float:
    return next(event.timestamp for event in instance.all_logs(run_id) if pick(event))


def container_start_seconds(instance: DagsterInstance, run_id: str) -> float:
    """From the launcher starting the run's container to the run's worker reporting it started."""
    launched = event_time(instance, run_id, lambda e: "in a new container" in (e.message or ""))
    started = event_time(instance, run_id, lambda e: e.dagster_event_type == DagsterEventType.RUN_START)
    return started - launched


@contextmanager
def run_local(what: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`deploy/docker/run-local.sh <what>` in a process group of its own, stopped as Ctrl-C would."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(DOCKER / "run-local.sh"), what],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_every_run_in_its_own_container(
    podman, image, docker_api, demo_data_dir, s3_endpoint, s3_client, s3_demo_buckets, tmp_path
) -> None:
    # The all-local path first, through the same doors (its environment has no S3 settings).
    with (
        postgres_schema_url() as local_serving,
        operated_instance("sqlite", demo_data_dir, tmp_path / "local", local_serving) as local,
    ):
        for site in (SITE_A, SITE_B):
            local.start_schedule(site_name(site, SCHEDULE), TICK - timedelta(minutes=30))
        started = time.monotonic()
        local.tick_scheduler(TICK)
        in_process_tick = time.monotonic() - started
        backfill = local.launch_backfill(SITE_A, HISTORY, list(WINDOW_ASSETS), TICK)
        local.run_backfill_daemon(backfill, TICK)
        local.launch_job(SITE_A, RECOMMENDATIONS_JOB, WINDOW, TICK)
        assert not local.failed_runs()
        expected = {site: published(local_serving, site) for site in (SITE_A, SITE_B)}

    test_id = uuid.uuid4().hex[:8]
    tag = f"localhost/article-rec-assets:e2e-{test_id}"
    prefix = f"article-rec-e2e-{test_id}"
    run([*podman, "tag", IMAGE, tag])
    values, logs = f"values-{test_id}", f"run-logs-{test_id}"
    for bucket in (values, logs):
        s3_client.create_bucket(Bucket=bucket)
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance_settings = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    # The test's own: container names, and monitoring polls that fit a test.
    instance_settings["run_launcher"]["config"]["container_name_prefix"] = prefix
    instance_settings["run_monitoring"]["poll_interval_seconds"] = 3
    instance_settings["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    # The demo sites' catalogue is a file (a newsroom's is its CMS's API): the runs read it from a
    # read-only folder of the host, world-readable for the image's user.
    catalogues = Path(tempfile.mkdtemp(prefix="article-rec-catalogues-"))
    catalogues.chmod(0o755)
    for site in (SITE_A, SITE_B):
        (catalogues / site).mkdir(mode=0o755)
        shutil.copyfile(demo_data_dir / site / "catalogue.jsonl", catalogues / site / "catalogue.jsonl")
    launcher = instance_settings["run_launcher"]["config"]
    launcher["container_kwargs"]["volumes"] = {str(catalogues): {"bind": "/catalogues", "mode": "ro"}}
    launcher["env_vars"].append(f"{environment.DATA_DIR_VAR}=/catalogues")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_settings))
    try:
        with postgres_database() as dagster_db, postgres_schema_url() as serving:
            user = urlsplit(POSTGRES_DSN).username or getpass.getuser()
            settings = {
                "DAGSTER_HOME": str(home),
                "DAGSTER_PG_HOST": "127.0.0.1",
                "DAGSTER_PG_PORT": "5432",
                "DAGSTER_PG_USERNAME": user,
                "DAGSTER_PG_PASSWORD": "",
                "DAGSTER_PG_DB": dagster_db,
                # As the host's user: the image's user has no role of its own.
                environment.SERVING_DATABASE_URL_VAR: with_user(serving, user),
                environment.EVENTS_SOURCE_VAR: "s3",
                environment.ASSET_STORAGE_VAR: f"s3://{values}/values",
                environment.S3_ENDPOINT_URL_VAR: s3_endpoint,
                "ARTICLE_REC_RUN_LOGS_BUCKET": logs,
                environment.AWS_ACCESS_KEY_ID_VAR: S3_TEST_CREDENTIALS["aws_access_key_id"],
                environment.AWS_SECRET_ACCESS_KEY_VAR: S3_TEST_CREDENTIALS["aws_secret_access_key"],
                "ARTICLE_REC_CODE_SERVER_PORT": str(free_port()),
                "DOCKER_HOST": docker_api,
            }
            scripts = {
                **os.environ,
                **settings,
                "IMAGE": tag,
                "ENGINE": " ".join(podman),
                "CODE_LOCATION_NAME": f"{prefix}-code-location",
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            }
            with run_local("code-location", scripts, tmp_path / "code-location.log") as code_location:
                wait_until(
                    lambda: (
                        "answers on port" in (tmp_path / "code-location.log").read_text()
                        or code_location.poll() is not None
                    ),
                    "the code location's container answers",
                    timeout=180,
                )
                assert code_location.poll() is None, (tmp_path / "code-location.log").read_text()[-3000:]
                walk(podman, settings, scripts, tmp_path, in_process_tick, expected, serving, prefix)
    finally:
        leftovers = run([*podman, "ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{prefix}"])
        names = leftovers.stdout.split()
        if names:
            run([*podman, "rm", "-f", *names], timeout=300)
        run([*podman, "rmi", tag])
        shutil.rmtree(catalogues, ignore_errors=True)
    assert names, "the runs' containers were kept after they exited (for their logs), until now"
    assert not run([*podman, "ps", "-a", "--filter", f"name=^{prefix}", "-q"]).stdout.strip()
    assert tag not in run([*podman, "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout


def walk(podman, settings, scripts, tmp_path, in_process_tick, expected, serving, prefix) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        instance = DagsterInstance.get()
        target = WorkspaceFileTarget(paths=[str(DOCKER / "workspace.yaml")])
        with instance, WorkspaceProcessContext(instance, target) as workspace:
            operated = Operated(instance, workspace, serving)
            # A scheduled tick for both sites, evaluated by the scheduler's own code before the
            # daemon starts (its scheduler would otherwise catch up the schedules from March).
            for site in (SITE_A, SITE_B):
                operated.start_schedule(site_name(site, SCHEDULE), TICK - timedelta(minutes=30))
            evaluated = time.monotonic()
            operated.tick_scheduler(TICK, drain=False)
            evaluation = time.monotonic() - evaluated
            for site in (SITE_A, SITE_B):
                operated.stop_schedule(site_name(site, SCHEDULE))
            ticked = {run.tags["site"]: run.run_id for run in operated.runs()}
            assert set(ticked) == {SITE_A, SITE_B}
            # A backfill of site A's history, as the UI sends it: queued behind its tick's run.
            backfill = operated.launch_backfill(SITE_A, HISTORY, list(WINDOW_ASSETS), datetime.now(UTC))

            with run_local("daemon", scripts, tmp_path / "daemon.log") as daemon:
                wait_until(lambda: finished(instance, list(ticked.values())), "the tick's runs", 600)
                for run_id in ticked.values():
                    assert status(instance, run_id) == DagsterRunStatus.SUCCESS, messages(instance, run_id)
                first_launch = min(
                    event_time(instance, r, lambda e: "in a new container" in (e.message or ""))
                    for r in ticked.values()
                )
                last_end = max(
                    event_time(instance, r, lambda e: e.dagster_event_type == DagsterEventType.RUN_SUCCESS)
                    for r in ticked.values()
                )
                # B's window again, its container killed while a step runs.
                killed = operated.launch_job(
                    SITE_B, RECOMMENDATIONS_JOB, WINDOW, datetime.now(UTC), drain=False
                )
                wait_until(
                    lambda: any(
                        e.dagster_event_type == DagsterEventType.STEP_START for e in instance.all_logs(killed)
                    ),
                    "a step of the run to be killed starts",
                )
                killed_container = instance.get_run_by_id(killed).tags["docker/container_id"]
                run([*podman, "kill", killed_container])

                wait_until(
                    lambda: instance.get_backfill(backfill).status.value != "REQUESTED", "backfill", 600
                )
                assert instance.get_backfill(backfill).status.value == "COMPLETED_SUCCESS"
                rerun = reexecute(operated, ticked[SITE_A])
                wait_until(lambda: finished(instance, [rerun, killed]), "the rerun", 600)
                assert status(instance, rerun) == DagsterRunStatus.SUCCESS, messages(instance, rerun)
                assert status(instance, killed) == DagsterRunStatus.FAILURE
                assert "killed (SIGKILL, exit code 137) from outside" in messages(instance, killed)
                retry = wait_for_retry(operated, killed)
                assert status(instance, retry) == DagsterRunStatus.SUCCESS, messages(instance, retry)

                figures = measure(podman, instance, operated.runs(), evaluation, first_launch, last_end)
                print(f"{figures}; in-process tick {in_process_tick:.1f} s")

                # More than site A's run may use: failed with the reason, A's lists unchanged.
                before = published(serving, SITE_A)
                starved = operated.launch_job(
                    SITE_A,
                    RECOMMENDATIONS_JOB,
                    WINDOW,
                    datetime.now(UTC),
                    drain=False,
                    tags={MEMORY_TAG: TOO_LITTLE_MEMORY, "dagster/max_retries": "0"},
                )
                wait_until(lambda: finished(instance, [starved]), "the starved run", 600)
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]

            assert status(instance, starved) == DagsterRunStatus.FAILURE
            assert "The run ran out of memory" in messages(instance, starved), messages(instance, starved)
            assert f"limit of {TOO_LITTLE_MEMORY}" in messages(instance, starved)
            assert published(serving, SITE_A) == before
            steps = [
                e.step_key
                for e in instance.all_logs(starved)
                if e.dagster_event_type == DagsterEventType.STEP_START
            ]
            failure = [
                e.message for e in instance.all_logs(starved) if "ran out of memory" in (e.message or "")
            ]
            print(f"starved run: steps started {steps}; failed with: {failure[-1]}")

            for site in (SITE_A, SITE_B):
                assert published(serving, site) == expected[site], site

            # Nothing of a run stays on its container's disk but the staging of its log (uploaded
            # to S3 as each step ends; a killed or starved run's last step's is left there).
            every_run = operated.runs()
            containers = {r.run_id: r.tags.get("docker/container_id") for r in every_run}
            assert all(containers.values()) and len(set(containers.values())) == len(every_run)
            for run_id, container in containers.items():
                changed = [
                    line.split(" ", 1)[1] for line in run([*podman, "diff", container]).stdout.splitlines()
                ]
                kept = [path for path in changed if path != "/tmp" and not path.startswith(LEFT_ON_DISK)]
                assert kept == [], (run_id, kept)
                staged = [path for path in changed if path.endswith((".out", ".err"))]
                print(f"{status(instance, run_id).value} run {run_id[:8]} left {staged or 'nothing'}")


def measure(podman, instance, runs, evaluation: float, first_launch: float, last_end: float) -> str:
    """The figures of deploy/README.md: each run's container start, the tick's wall time, peaks."""
    starts = sorted(container_start_seconds(instance, r.run_id) for r in runs)
    peaks = []
    for r in runs:
        logs = run([*podman, "logs", r.tags["docker/container_id"]])
        verdict = find_verdict(logs.stdout + logs.stderr)
        if verdict and verdict.peak_bytes:
            peaks.append(f"{site_of_run(r)} {verdict.peak_bytes / 2**20:.0f}")
    return (
        f"\n{len(runs)} runs, each in its own container; launch to run start: median "
        f"{starts[len(starts) // 2]:.1f} s (min {starts[0]:.1f}, max {starts[-1]:.1f})"
        f"\ntwo-site tick in containers: {evaluation + last_end - first_launch:.1f} s (evaluation "
        f"{evaluation:.1f} s, first launch to last end {last_end - first_launch:.1f} s)"
        f"\npeak memory (MiB, the container's cgroup): {', '.join(peaks)}"
    )


def reexecute(operated: Operated, parent: str) -> str:
    """The UI's "Re-execute all" of a run: the new run's id."""
    result = execute_dagster_graphql(
        operated.request_context(),
        LAUNCH_PIPELINE_REEXECUTION_MUTATION,
        {"reexecutionParams": {"parentRunId": parent, "strategy": "ALL_STEPS"}},
    )
    launched = result.data["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for_retry(operated: Operated, parent: str) -> str:
    """The run-retry daemon's new run of `parent`, once it finished."""

    def retries() -> list:
        return [r for r in operated.runs() if r.tags.get("dagster/parent_run_id") == parent]

    wait_until(lambda: bool(retries()) and finished(operated.instance, [retries()[0].run_id]), "retry", 600)
    return retries()[0].run_id


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    if parts.username:
        return url
    return parts._replace(netloc=f"{user}@{parts.netloc}").geturl()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

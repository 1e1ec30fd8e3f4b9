"""A killed run never blocks its site for good: with the instance files we ship (one run per
site, run monitoring), the daemon's own monitoring fails a run whose worker is gone, and the
queue daemon then starts the site's next run. On SQLite (the embedded default) and PostgreSQL
(production)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus
from dagster._core.test_utils import freeze_time
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

from article_rec_assets.partitions import window_key
from article_rec_assets_tests.conftest import DEMO_END
from article_rec_assets_tests.operating import LOG, Operated, operated_instance, postgres_or_sqlite_url

ROOT = Path(__file__).resolve().parents[1]
SITE = "demo-tribune"
NOW = DEMO_END - timedelta(hours=1)
# The embedded default's file, the production file, and the launcher a killed worker leaves.
CASES = {
    "embedded-default": ("sqlite", ROOT / "dagster.yaml", False),
    "production-default-launcher": ("postgresql", ROOT / "deploy" / "dagster.yaml", False),
    "production-ecs": ("postgresql", ROOT / "deploy" / "ecs" / "dagster.yaml", True),
}


def shipped(path: Path, health_checks: bool) -> dict:
    """The run coordinator, concurrency (one run per site's pool) and run monitoring of a shipped
    instance file, with a launcher whose workers are killed once started."""
    config = yaml.safe_load(path.read_text())
    return {
        "run_coordinator": config["run_coordinator"],
        "concurrency": config["concurrency"],
        "run_monitoring": config["run_monitoring"],
        "run_launcher": {
            "module": "article_rec_assets_tests.operating",
            "class": "KilledWorkerLauncher",
            "config": {"health_checks": health_checks},
        },
    }


@pytest.fixture(params=list(CASES))
def case(
    request: pytest.FixtureRequest, demo_data_dir: Path, tmp_path: Path
) -> Iterator[tuple[Operated, dict]]:
    storage, path, health_checks = CASES[request.param]
    config = yaml.safe_load(path.read_text())
    with (
        postgres_or_sqlite_url(storage, tmp_path) as serving_url,
        operated_instance(storage, demo_data_dir, tmp_path, serving_url, shipped(path, health_checks)) as op,
    ):
        yield op, {"health_checks": health_checks, **config["run_monitoring"]}


def status(op: Operated, run_id: str) -> DagsterRunStatus:
    return op.instance.get_run_by_id(run_id).status


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
    assert (status(op, first), status(op, second)) == (DagsterRunStatus.STARTED, DagsterRunStatus.QUEUED)

    # The monitoring daemon: a launcher that sees workers fails the run at once; any other
    # launcher, once the run is older than max_runtime_seconds.
    soon = NOW + timedelta(seconds=monitoring["poll_interval_seconds"])
    with freeze_time(soon):
        list(execute_run_monitoring_iteration(op.workspace, LOG))
    if not monitoring["health_checks"]:
        assert status(op, first) == DagsterRunStatus.STARTED  # still within its time
        late = NOW + timedelta(seconds=monitoring["max_runtime_seconds"] + 60)
        with freeze_time(late):
            list(execute_run_monitoring_iteration(op.workspace, LOG))
    assert status(op, first) in (
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
        DagsterRunStatus.CANCELING,
    )

    op.drain_queue(NOW, max_iterations=3, expect_empty=False)
    assert status(op, second) == DagsterRunStatus.STARTED  # the site's next run is no longer stuck

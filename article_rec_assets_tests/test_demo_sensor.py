"""The live demo's sensor: only with the demo's environment; it writes each ended hour after the
generated history once, and the schedule's next tick ingests, trains and publishes on it with
every check passing."""

import importlib
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterRunStatus, DefaultSensorStatus, build_sensor_context
from dagster._core.test_utils import freeze_time
from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module
from dagster._daemon.sensor import execute_sensor_iteration

import article_rec_assets.definitions
import article_rec_demo.definitions
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.schedules import INGEST_WINDOW_JOB, SCHEDULE, site_name
from article_rec_assets.settings import environment
from article_rec_assets_tests.support import DEMO_DAYS, DEMO_END
from article_rec_assets_tests.support.operating import (
    LOG,
    Operated,
    operated_instance,
    postgres_or_sqlite_url,
)
from article_rec_demo import demo_environment
from article_rec_demo.sensor import DEMO_SENSOR, demo_sensors

HISTORY = demo_environment.demo_history_value(DEMO_END - timedelta(days=DEMO_DAYS), DEMO_END)
SITE = "demo-tribune"
# The sensor's first tick: ten hours after the history's end; the schedule's tick at 10:15 then
# ingests the 08:00 window, which the history has on the day before.
NOW = DEMO_END + timedelta(hours=10, minutes=1)
TICK = DEMO_END + timedelta(hours=10, minutes=15)
WINDOW = DEMO_END + timedelta(hours=8)


def test_the_sensor_exists_with_the_demos_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(demo_environment.DEMO_HISTORY_VAR, raising=False)
    monkeypatch.delenv(environment.EVENTS_SOURCE_VAR, raising=False)
    monkeypatch.delenv(environment.S3_ENDPOINT_URL_VAR, raising=False)
    assert demo_sensors() == []
    assert DEMO_SENSOR not in {s.name for s in article_rec_assets.definitions.defs.sensors}

    monkeypatch.setenv(demo_environment.DEMO_HISTORY_VAR, HISTORY)
    [sensor] = demo_sensors()
    assert (sensor.name, sensor.default_status) == (DEMO_SENSOR, DefaultSensorStatus.RUNNING)
    # The product's definitions never have it, whatever the environment: the demo's add it.
    importlib.reload(article_rec_assets.definitions)
    assert DEMO_SENSOR not in {s.name for s in article_rec_assets.definitions.defs.sensors}
    assert DEMO_SENSOR in {s.name for s in importlib.reload(article_rec_demo.definitions).defs.sensors}
    # Events from S3 are a deployment's: no synthetic event is ever written there.
    monkeypatch.setenv(environment.EVENTS_SOURCE_VAR, "s3")
    assert demo_sensors() == []


def test_make_ui_and_dagster_dev_each_find_one_definitions_object() -> None:
    """What the workspaces load (`make ui`: the demo's module; `dagster dev`: the product's) holds
    one Definitions object at module scope, as Dagster requires of a module it loads."""
    for module in ("article_rec_demo.definitions", "article_rec_assets.definitions"):
        targets = loadable_targets_from_python_module(module, working_directory=None)
        assert [target.attribute for target in targets] == ["defs"], module


@pytest.fixture
def live_demo(demo_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Operated]:
    """The demo's history (a copy: the sensor writes into it) in an instance whose definitions
    were loaded with the demo's environment, as `make ui` loads them."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data_dir, data_dir)
    monkeypatch.setenv(demo_environment.DEMO_HISTORY_VAR, HISTORY)
    with (
        postgres_or_sqlite_url("sqlite", tmp_path) as serving_url,
        operated_instance(
            "sqlite", data_dir, tmp_path, serving_url, module="article_rec_demo.definitions"
        ) as operated,
    ):
        try:
            yield operated
        finally:
            # The definitions are loaded again on the way out: without the demo's sensor.
            os.environ.pop(demo_environment.DEMO_HISTORY_VAR, None)


def sensor_daemon(operated: Operated, at) -> None:
    """One iteration of the sensor daemon at `at`: every running sensor evaluated."""
    with freeze_time(at):
        list(execute_sensor_iteration(operated.workspace, LOG, None, None))


def bucket_files(data_dir: Path) -> dict[str, float]:
    return {str(p.relative_to(data_dir)): p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file()}


def test_the_sensor_feeds_the_schedules_next_tick(live_demo: Operated, webhook: list[dict]) -> None:
    data_dir = environment.data_dir()
    assert live_demo.repository().has_sensor(DEMO_SENSOR)
    sensor = article_rec_demo.definitions.defs.get_sensor_def(DEMO_SENSOR)

    with freeze_time(NOW):
        context = build_sensor_context(instance=live_demo.instance)
        first = sensor.evaluate_tick(context)
    assert "demo-tribune: 2026-03-04 00:00-10:00 UTC" in first.skip_message
    for site in SITES.values():
        bucket = site_bucket_dir(data_dir, site)
        assert all(any((bucket / hour_folder(DEMO_END + timedelta(hours=k))).iterdir()) for k in range(10))
        assert not (bucket / hour_folder(DEMO_END + timedelta(hours=10))).exists()

    # The same minute again, with the cursor the first tick left: nothing is written.
    files = bucket_files(data_dir)
    with freeze_time(NOW + timedelta(minutes=1)):
        again = sensor.evaluate_tick(build_sensor_context(instance=live_demo.instance, cursor=first.cursor))
    assert again.skip_message == "no hour has ended since the last one written"
    assert again.cursor == first.cursor
    assert bucket_files(data_dir) == files

    # The history's same window the day before, ingested as `make demo` did; then the tick.
    day_before = window_key(WINDOW - timedelta(days=1))
    live_demo.launch_job(SITE, INGEST_WINDOW_JOB, day_before, at=NOW)
    live_demo.start_schedule(site_name(SITE, SCHEDULE), at=NOW)
    sensor_daemon(live_demo, TICK)  # every sensor's first tick, the alerts' included
    live_demo.tick_scheduler(TICK + timedelta(minutes=1))
    for minutes in (3, 5):
        sensor_daemon(live_demo, TICK + timedelta(minutes=minutes))
    assert webhook == []  # nothing to page anyone about

    runs = live_demo.runs(tags={"dagster/schedule_name": site_name(SITE, SCHEDULE)})
    assert [(r.tags["dagster/partition"], r.status) for r in runs] == [
        (window_key(WINDOW), DagsterRunStatus.SUCCESS)
    ]
    evaluations = [
        event.dagster_event.event_specific_data
        for event in live_demo.instance.all_logs(
            runs[0].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    assert {e.check_name for e in evaluations} >= {"volume_like_earlier_days", "approved", "publishable"}
    assert [(e.check_name, e.description) for e in evaluations if not e.passed] == []
    volume = next(e for e in evaluations if e.check_name == "volume_like_earlier_days")
    [earlier] = volume.metadata["same_window_earlier_days"].value
    assert 0.7 < volume.metadata["events"].value / earlier < 1.4
    assert live_demo.latest_metadata(SITE, "published_recommendations")["window"] == window_key(WINDOW)

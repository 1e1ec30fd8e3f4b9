"""The production dagster.yaml: a Dagster instance whose runs, event logs and schedules live in
PostgreSQL, with its settings taken from the environment."""

from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, FilesystemIOManager, materialize

from article_rec_assets.assets.ingestion import build
from article_rec_assets.io_managers import ParquetIOManager
from article_rec_assets.partitions import window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.run_launcher import LocalWorkerRunLauncher
from article_rec_assets_tests.support import DEMO_END, POSTGRES_DSN, production_home

REPO = Path(__file__).resolve().parents[1]


def test_production_instance_keeps_runs_in_postgres(
    dagster_database: str, demo_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = production_home(tmp_path / "dagster_home", dagster_database, monkeypatch)

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher) is LocalWorkerRunLauncher
        assert instance.run_retries_enabled
        partition = window_key(DEMO_END.replace(hour=20))
        ingest_window, _ = build("demo-tribune")
        result = materialize(
            [ingest_window],
            partition_key=partition,
            instance=instance,
            resources={
                "event_bucket": EventBucket(root_dir=str(demo_data_dir)),
                "table_io_manager": ParquetIOManager(base_dir=str(tmp_path / "storage")),
                "io_manager": FilesystemIOManager(base_dir=str(tmp_path / "storage")),
            },
        )
        assert result.success

    # Read back from PostgreSQL itself, not through Dagster.
    with psycopg.connect(POSTGRES_DSN.rsplit("/", 1)[0] + "/" + dagster_database) as conn:
        runs = conn.execute("SELECT run_id, status FROM runs").fetchall()
        materializations = conn.execute(
            "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        ).fetchall()
    assert runs == [(result.run_id, "SUCCESS")]
    assert sorted(materializations) == [
        ('["demo_tribune", "delivered_events"]', partition),
        ('["demo_tribune", "quarantined_event_lines"]', partition),
        ('["demo_tribune", "raw_events"]', partition),
        ('["demo_tribune", "reading_state"]', partition),
    ]

"""No run reads another's disk: with asset values in S3 (moto's server over HTTP), a window's
ingestion and catalogue run in one process with its own DAGSTER_HOME and working folder, then
the training, backtest, recommendations and publishing in a second process with other, empty,
local folders; the published recommendations equal those of the all-local path."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from article_rec_assets.definitions import all_assets
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.schema import connect
from article_rec_assets.settings import environment
from article_rec_assets.settings.windows import WINDOW_HOURS, WINDOW_KEY_FORMAT
from article_rec_assets_tests.support import (
    DEMO_END,
    S3_TEST_CREDENTIALS,
    S3_TEST_REGION,
    postgres_schema_url,
)

SITE = "demo-tribune"
WINDOWS = [DEMO_END - timedelta(hours=WINDOW_HOURS * i) for i in range(12, 0, -1)]  # the last day
FIRST = "window"  # ingestion and catalogue, the day's windows in one run
SECOND = "model"  # training, backtest, recommendations and publishing, as of the newest window
BUCKET = "article-rec-asset-values"
ASSET_NAMES = {key.path[-1] for asset in all_assets for key in asset.keys}


REPO = Path(__file__).resolve().parents[1]


def run_process(folder: Path, stage: str, windows: list, env: dict[str, str]) -> None:
    """A process with `folder`'s DAGSTER_HOME and working folder (new and empty the first time)."""
    home, work = folder / "dagster_home", folder / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARTICLE_REC_", "AWS_", "SERVING_"))}
    keys = [w.strftime(WINDOW_KEY_FORMAT) for w in windows]
    run = subprocess.run(
        [sys.executable, "-m", "article_rec_assets_tests.support.materialize_windows", stage, SITE, *keys],
        cwd=work,
        env={**base, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO), **env},
        timeout=900,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def published(url: str) -> dict[str, list[tuple]]:
    engine = connect(url)
    try:
        lists = {}
        for model_type in ("article", "popularity"):
            model = current_model(engine, SITE, model_type)
            assert model is not None, model_type
            lists[model_type] = sorted(map(tuple, model.rows.astype(str).values.tolist()))
        return lists
    finally:
        engine.dispose()


def test_runs_in_separate_processes_share_only_s3_and_publish_what_the_local_path_publishes(
    demo_data_dir: Path, s3_endpoint: str, s3_client, s3_demo_buckets, tmp_path: Path
) -> None:
    s3_client.create_bucket(Bucket=BUCKET)
    with postgres_schema_url() as s3_serving, postgres_schema_url() as local_serving:
        local = {
            environment.DATA_DIR_VAR: str(demo_data_dir),
            environment.SERVING_DATABASE_URL_VAR: local_serving,
        }
        # The all-local path: one machine, both stages on one DAGSTER_HOME's storage folder.
        run_process(tmp_path / "local", FIRST, WINDOWS, local)
        run_process(tmp_path / "local", SECOND, WINDOWS[-1:], local)

        s3 = {
            environment.S3_ENDPOINT_URL_VAR: s3_endpoint,  # events from S3 too
            environment.S3_REGION_VAR: S3_TEST_REGION,
            environment.ASSET_STORAGE_VAR: f"s3://{BUCKET}/values",
            environment.AWS_ACCESS_KEY_ID_VAR: S3_TEST_CREDENTIALS["aws_access_key_id"],
            environment.AWS_SECRET_ACCESS_KEY_VAR: S3_TEST_CREDENTIALS["aws_secret_access_key"],
            environment.SERVING_DATABASE_URL_VAR: s3_serving,
        }
        run_process(tmp_path / "s3-1", FIRST, WINDOWS, {**s3, environment.DATA_DIR_VAR: str(demo_data_dir)})
        empty = tmp_path / "s3-2-data"
        empty.mkdir()
        run_process(tmp_path / "s3-2", SECOND, WINDOWS[-1:], {**s3, environment.DATA_DIR_VAR: str(empty)})

        # Nothing of the values went to either process's disk.
        for folder in (tmp_path / "s3-1", tmp_path / "s3-2"):
            # (the instance's own run storage, event logs and compute logs stay local, as they should)
            kept = [f for f in folder.rglob("*") if f.is_file() and set(f.parts) & ASSET_NAMES]
            assert kept == [] and not list(folder.rglob("*.parquet")), kept
        stored = {obj["Key"] for obj in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"]}
        assert any(key.startswith("values/demo_tribune/raw_events/") for key in stored)
        # A model value under the window it was trained as of.
        assert any(key.startswith("values/demo_tribune/trained_model/") for key in stored)

        from_s3, from_local = published(s3_serving), published(local_serving)
    assert len(from_s3["article"]) > 100 and from_s3["popularity"]
    assert from_s3 == from_local

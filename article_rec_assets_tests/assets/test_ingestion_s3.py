"""Ingestion through Dagster from S3 (moto's server over HTTP) gives the very tables that the same
events give from the local folder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, instance_for_test, materialize

from article_rec_assets.definitions import all_assets
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.windows import WINDOW_HOURS, WINDOW_KEY_FORMAT
from article_rec_assets_tests.support import DEMO_END, ingestion_resources, keys

SITE = "demo-tribune"
# Two consecutive windows late in the generated data, so the hours before them (read as context
# for duplicates) hold events too.
WINDOWS = [DEMO_END - timedelta(hours=WINDOW_HOURS * i) for i in (3, 2)]
TABLES = ("raw_events", "quarantined_event_lines", "sessionized_interactions")


def ingest(
    instance: DagsterInstance, event_bucket: EventBucket, data_dir: Path, storage: Path
) -> dict[str, dict[str, pd.DataFrame]]:
    """Materialize the ingestion group for each window; the stored Parquet tables by asset and window."""
    resources = ingestion_resources(event_bucket, data_dir, storage)
    for window in WINDOWS:
        result = materialize(
            all_assets,
            selection=keys.ingestion(SITE),
            partition_key=window_key(window),
            resources=resources,
            instance=instance,
        )
        assert result.success
        # The assets' retry policy must not hide a failed first attempt (nor make the test slow).
        retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert not retried, f"steps retried: {retried}"
    stored: dict[str, dict[str, pd.DataFrame]] = {}
    for table in TABLES:
        files = sorted(keys.window_folder(storage, SITE, table).glob("*.parquet"))
        if files or table != "quarantined_event_lines":  # that one may not exist (yet)
            assert [f.stem for f in files] == [f"{w:{WINDOW_KEY_FORMAT}}" for w in WINDOWS], table
        stored[table] = {f.stem: pd.read_parquet(f) for f in files}
    return stored


@pytest.mark.usefixtures("s3_demo_buckets")
def test_ingestion_from_s3_equals_ingestion_from_the_local_folder(
    demo_data_dir: Path, s3_resource, tmp_path: Path
) -> None:
    with instance_for_test() as instance:
        local = ingest(instance, EventBucket(root_dir=str(demo_data_dir)), demo_data_dir, tmp_path / "local")
        from_s3 = ingest(instance, EventBucket(s3=s3_resource), demo_data_dir, tmp_path / "s3")

    for window in (f"{w:{WINDOW_KEY_FORMAT}}" for w in WINDOWS):
        assert len(local["raw_events"][window]) > 0
        assert len(local["sessionized_interactions"][window]) > 0
        for table in ("raw_events", "sessionized_interactions"):
            pd.testing.assert_frame_equal(from_s3[table][window], local[table][window], check_exact=True)
        if window in local["quarantined_event_lines"]:
            # The same lines set aside; only the name of their object differs (S3 key vs local path).
            local_lines, s3_lines = (
                local["quarantined_event_lines"][window],
                from_s3["quarantined_event_lines"][window],
            )
            assert len(local_lines) == len(s3_lines)
            events = SITES[SITE].events
            s3_root = "/".join(
                filter(None, [f"s3://{events.bucket}", events.prefix.strip("/"), "enriched/good/"])
            )
            assert s3_lines["source"].str.startswith(s3_root).all()
            assert local_lines["source"].str.startswith(f"buckets/{events.bucket}/").all()
            strip = r"^.*?/enriched/good/"
            pd.testing.assert_frame_equal(
                s3_lines.assign(source=s3_lines["source"].str.replace(strip, "", regex=True)),
                local_lines.assign(source=local_lines["source"].str.replace(strip, "", regex=True)),
            )

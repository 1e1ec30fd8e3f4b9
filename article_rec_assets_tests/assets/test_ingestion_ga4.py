"""A site that switches from Snowplow to GA4 on a given date, through Dagster: the windows before
read the Snowplow folders, those after the GA4 export, from the local folder and from S3, into the
same sessionized interactions; a window read again after the daily table replaced the intraday one
gives the same rows."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import instance_for_test, materialize

from article_rec_assets.definitions import all_assets
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import GA4Settings
from article_rec_assets.settings.windows import WINDOW_HOURS, WINDOW_KEY_FORMAT
from article_rec_assets_tests.support import ingestion_resources, upload_folder
from article_rec_assets_tests.support import keys as site_keys
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.generator.ga4 import generate_ga4_site

SITE = "demo-tribune"
SWITCH = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
STEP = timedelta(hours=WINDOW_HOURS)
WINDOWS = [SWITCH - 2 * STEP, SWITCH - STEP, SWITCH, SWITCH + STEP]
DAY_BEFORE = [SWITCH - timedelta(days=1) - STEP, SWITCH - timedelta(days=1)]  # Snowplow's
VOLUME_SEEN: dict[str, list[int]] = {}  # window -> the earlier days' counts its volume check used


@pytest.fixture
def switched_site(monkeypatch: pytest.MonkeyPatch):
    site = SITES[SITE]
    events = site.events.model_copy(update={"ga4": GA4Settings(prefix="ga4/analytics_1", since=SWITCH)})
    switched = site.model_copy(update={"events": events})
    monkeypatch.setitem(SITES, SITE, switched)
    return switched


def materialize_windows(
    instance, bucket: EventBucket, data_dir: Path, storage: Path, windows: list[datetime] = WINDOWS
) -> dict[str, dict]:
    resources = ingestion_resources(bucket, data_dir, storage)
    for window in windows:
        result = materialize(
            all_assets,
            selection=site_keys.ingestion(SITE),
            partition_key=window_key(window),
            resources=resources,
            instance=instance,
        )
        assert result.success
        for evaluation in result.get_asset_check_evaluations():
            if evaluation.check_name == "volume_like_earlier_days":
                VOLUME_SEEN[f"{window:{WINDOW_KEY_FORMAT}}"] = evaluation.metadata[
                    "same_window_earlier_days"
                ].value
    return {
        table: {
            f.stem: pd.read_parquet(f)
            for f in sorted(site_keys.window_folder(storage, SITE, table).glob("*.parquet"))
        }
        for table in ("raw_events", "sessionized_interactions")
    }


def raw_events_metadata(instance, window: datetime, name: str):
    """The newest materialization of the window's raw_events: its metadata entry `name`."""
    records = instance.fetch_materializations(site_keys.key(SITE, "raw_events"), limit=100).records
    for record in records:
        if record.partition_key == window_key(window):
            return record.asset_materialization.metadata[name].value
    raise AssertionError(f"no materialization of raw_events for {window}")


def source_of(instance, window: datetime) -> str:
    return raw_events_metadata(instance, window, "source")


def test_a_site_switching_to_ga4_reads_each_window_from_its_source(
    switched_site, tmp_path: Path, s3_client, s3_resource
) -> None:
    data = tmp_path / "data"
    generate_site(switched_site, data, SWITCH - timedelta(hours=28), SWITCH)
    # The day of the switch is still being written: its intraday table.
    written = generate_ga4_site(switched_site, data, SWITCH, SWITCH + 2 * STEP)
    assert written.tables == {"2026-03-03": "events_intraday"} and written.engaged_seconds > 0

    with instance_for_test() as instance:
        materialize_windows(instance, EventBucket(root_dir=str(data)), data, tmp_path / "local", DAY_BEFORE)
        local = materialize_windows(instance, EventBucket(root_dir=str(data)), data, tmp_path / "local")
        # The volume check compares a window with the same window of earlier days from its source:
        # GA4's has no pings, and would look like a collapse beside Snowplow's.
        before, at_switch = (f"{w:{WINDOW_KEY_FORMAT}}" for w in (WINDOWS[1], WINDOWS[2]))
        assert len(VOLUME_SEEN[before]) == 1 and VOLUME_SEEN[at_switch] == []
        assert [source_of(instance, w) for w in WINDOWS] == ["snowplow", "snowplow", "ga4", "ga4"]
        # The day's table is parsed by its first window; the next reads that parse, kept in storage.
        parsed, kept = ("ga4_files_parsed", "ga4_files_whose_parse_was_kept")
        assert [raw_events_metadata(instance, WINDOWS[2], name) for name in (parsed, kept)] == [1, 0]
        assert [raw_events_metadata(instance, WINDOWS[3], name) for name in (parsed, kept)] == [0, 1]
        keys = [f"{w:{WINDOW_KEY_FORMAT}}" for w in WINDOWS]
        for key in keys:
            assert len(local["sessionized_interactions"][key]) > 0, key
        # Nothing of the engaged time GA4 reported is lost or counted twice on the way.
        ga4_seconds = sum(local["raw_events"][k]["engaged_increment_seconds"].sum() for k in keys[2:])
        assert ga4_seconds == pytest.approx(written.engaged_seconds, abs=1e-6)
        ga4_interactions = pd.concat([local["sessionized_interactions"][k] for k in keys[2:]])
        assert set(ga4_interactions.columns) == set(local["sessionized_interactions"][keys[0]].columns)
        assert ga4_interactions["reader_id"].str.contains(r"^\d+\.\d+$").all()  # user_pseudo_id

        # The same export from S3 gives the same tables.
        bucket = switched_site.events.bucket
        s3_client.create_bucket(Bucket=bucket)
        upload_folder(s3_client, data / "buckets" / bucket, bucket)
        s3_bucket = EventBucket(s3=s3_resource)
        intraday = "ga4/analytics_1/events_intraday_20260303"
        fingerprint = s3_bucket.folder_fingerprint(switched_site, intraday)
        assert fingerprint is not None and s3_bucket.folder_fingerprint(switched_site, "ga4/none") is None
        # Each storage starts from what the instance recorded (the day before's windows): a
        # window checks the earlier windows' stored tables against their materializations.
        shutil.copytree(tmp_path / "local", tmp_path / "s3")
        from_s3 = materialize_windows(instance, s3_bucket, data, tmp_path / "s3")
        for table in ("raw_events", "sessionized_interactions"):
            for key in keys[2:]:
                pd.testing.assert_frame_equal(from_s3[table][key], local[table][key], check_exact=True)

        # The next day GA4 writes the daily table of the 3rd: the windows read again, the same rows.
        day = data / "buckets" / bucket / "ga4/analytics_1"
        (day / "events_intraday_20260303").rename(day / "events_20260303")
        shutil.copytree(tmp_path / "local", tmp_path / "again")
        again = materialize_windows(instance, EventBucket(root_dir=str(data)), data, tmp_path / "again")
        assert source_of(instance, WINDOWS[2]) == "ga4"
        for key in keys[2:]:
            pd.testing.assert_frame_equal(
                again["sessionized_interactions"][key],
                local["sessionized_interactions"][key],
                check_exact=True,
            )

"""What operators do, through Dagster's own machinery, on SQLite and on PostgreSQL: the schedule
ticking twice, a rerun of a past window, a backfill launched as the UI launches it."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterRunStatus

from article_rec_assets.partitions import SITES, site_window_key
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.schema import connect
from article_rec_assets_tests.conftest import DEMO_END
from article_rec_assets_tests.operating import Operated, operated_instance, postgres_or_sqlite_url

# Two ticks inside the generated data: at 20:15 the 18:00 window, at 22:15 the 20:00 window.
FIRST_TICK = DEMO_END - timedelta(hours=3, minutes=45)
SECOND_TICK = FIRST_TICK + timedelta(hours=2)
SITE = "demo-tribune"


@pytest.fixture(params=["sqlite", "postgresql"])
def operated(request: pytest.FixtureRequest, demo_data_dir: Path, tmp_path: Path) -> Iterator[Operated]:
    with (
        postgres_or_sqlite_url(request.param, tmp_path) as serving_url,
        operated_instance(request.param, demo_data_dir, tmp_path, serving_url) as op,
    ):
        yield op


def window_of(tick: datetime) -> datetime:
    return tick.replace(minute=0) - timedelta(hours=2)


def test_two_scheduled_ticks_and_a_rerun_of_a_past_window(operated: Operated) -> None:
    operated.start_schedule("every_two_hours", FIRST_TICK - timedelta(minutes=5))
    operated.tick_scheduler(FIRST_TICK + timedelta(minutes=1))
    operated.tick_scheduler(SECOND_TICK + timedelta(minutes=1))

    runs = operated.runs()
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2 * len(SITES), [
        (r.tags.get("dagster/partition"), r.status) for r in runs
    ]
    expected = [
        str(site_window_key(site, window_of(tick)))
        for tick in (FIRST_TICK, SECOND_TICK)
        for site in sorted(SITES)
    ]
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(expected)
    assert all(r.tags.get("dagster/schedule_name") == "every_two_hours" for r in runs)
    engine = connect(operated.serving_url)
    try:
        for site in SITES:
            model = current_model(engine, site)
            assert model is not None and len(model.rows) > 0
            # The second tick's model serves: trained up to the end of its window.
            assert model.trained_until == window_of(SECOND_TICK) + timedelta(hours=2)
        second = str(site_window_key(SITE, window_of(SECOND_TICK)))
        assert operated.latest_metadata("interaction_matrix", second)["windows_read"] == 2

        # An operator reruns the first tick's window (the UI's "materialize" of that partition):
        # the catalogue reads back what the first run stored, and nothing newer is replaced.
        first = str(site_window_key(SITE, window_of(FIRST_TICK)))
        before = current_model(engine, SITE)
        run_id = operated.launch_job("recommendations_job", first, at=SECOND_TICK + timedelta(minutes=30))
        assert operated.instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
        catalogue = operated.latest_metadata("article_catalogue", first)
        assert catalogue["paths_settled_by_cache"] > 0  # read back from the serving database
        after = current_model(engine, SITE)
        assert after.model_id == before.model_id
        assert operated.latest_metadata("published_recommendations", first)["status"] == "skipped"
    finally:
        engine.dispose()


INGESTION_AND_CATALOGUE = [
    "delivered_events",
    "reading_state",
    "raw_events",
    "quarantined_event_lines",
    "sessionized_interactions",
    "article_catalogue",
]
WINDOW_TABLES = INGESTION_AND_CATALOGUE


def _table(operated: Operated, asset: str, site: str, window: datetime) -> pd.DataFrame:
    storage = Path(operated.instance.storage_directory())
    return pd.read_parquet(storage / asset / site / f"{window:%Y-%m-%d-%H:%M}.parquet")


def _published(operated: Operated) -> dict:
    engine = connect(operated.serving_url)
    try:
        out = {}
        for site in SITES:
            for model_type in ("article", "popularity"):
                model = current_model(engine, site, model_type)
                assert model is not None, (site, model_type)
                out[site, model_type] = model.rows.sort_values(
                    ["source_entity_id", "recommended_external_id"], ignore_index=True
                )
        return out
    finally:
        engine.dispose()


def _current_model_ids(url: str) -> dict:
    engine = connect(url)
    try:
        return {
            (s, t): current_model(engine, s, t).model_id for s in SITES for t in ("article", "popularity")
        }
    finally:
        engine.dispose()


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_a_backfill_then_one_retrain_equals_the_scheduled_runs(
    storage: str, demo_data_dir: Path, tmp_path: Path
) -> None:
    ticks = [FIRST_TICK, SECOND_TICK]
    windows = [window_of(t) for t in ticks]
    later = ticks[-1] + timedelta(minutes=30)
    with (
        postgres_or_sqlite_url(storage, tmp_path / "scheduled") as scheduled_url,
        operated_instance(storage, demo_data_dir, tmp_path / "scheduled", scheduled_url) as scheduled,
    ):
        scheduled.start_schedule("every_two_hours", ticks[0] - timedelta(minutes=5))
        for tick in ticks:
            scheduled.tick_scheduler(tick + timedelta(minutes=1))
        assert {r.status for r in scheduled.runs()} == {DagsterRunStatus.SUCCESS}
        expected_tables = {
            (a, s, w): _table(scheduled, a, s, w) for a in WINDOW_TABLES for s in SITES for w in windows
        }
        expected_recs = {s: _table(scheduled, "article_recommendations", s, windows[-1]) for s in SITES}
        expected_published = _published(scheduled)

    with (
        postgres_or_sqlite_url(storage, tmp_path / "backfilled") as backfill_url,
        operated_instance(storage, demo_data_dir, tmp_path / "backfilled", backfill_url) as backfilled,
    ):
        # The operator backfills the two windows of both sites (ingestion and catalogue), as the
        # UI's "Launch backfill" does, then launches retrain_job once per site for the newest.
        keys = [str(site_window_key(s, w)) for s in SITES for w in windows]
        backfill_id = backfilled.launch_backfill(keys, INGESTION_AND_CATALOGUE, at=later)
        backfilled.run_backfill_daemon(backfill_id, at=later)
        runs = backfilled.runs()
        assert len(runs) == len(keys)  # one run per window: all four assets of a window together
        assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
        for site in SITES:
            backfilled.launch_job("retrain_job", str(site_window_key(site, windows[-1])), at=later)
        assert {r.status for r in backfilled.runs()} == {DagsterRunStatus.SUCCESS}

        for (asset, site, window), expected in expected_tables.items():
            pd.testing.assert_frame_equal(_table(backfilled, asset, site, window), expected, obj=asset)
        for site, expected in expected_recs.items():
            pd.testing.assert_frame_equal(
                _table(backfilled, "article_recommendations", site, windows[-1]), expected
            )
        published = _published(backfilled)
        assert published.keys() == expected_published.keys()
        for key, rows in published.items():
            pd.testing.assert_frame_equal(rows, expected_published[key], obj=str(key))

        # A backfill of every asset over the same windows retrains them, but publishes nothing.
        before = _current_model_ids(backfill_url)
        everything = [
            *INGESTION_AND_CATALOGUE,
            "interaction_matrix",
            "trained_model",
            "article_popularity",
            "article_recommendations",
            "recommendation_backtest",
            "published_recommendations",
        ]
        site_keys = [str(site_window_key(SITE, w)) for w in windows]
        backfill_id = backfilled.launch_backfill(site_keys, everything, at=later)
        backfilled.run_backfill_daemon(backfill_id, at=later)
        backfill_runs = backfilled.runs(tags={"dagster/backfill": backfill_id})
        assert {r.status for r in backfill_runs} == {DagsterRunStatus.SUCCESS}
        assert {
            r.tags.get("article_rec/publish")
            for r in backfill_runs
            if r.asset_selection
            and any(k.to_user_string() == "published_recommendations" for k in r.asset_selection)
        } == {"skipped"}
        for key in site_keys:
            assert backfilled.latest_metadata("published_recommendations", key)["status"] == "skipped"
        assert _current_model_ids(backfill_url) == before

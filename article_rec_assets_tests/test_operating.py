"""What operators do, through Dagster's own machinery, on SQLite and on PostgreSQL: the schedule
ticking twice, a rerun of a past window, a backfill launched as the UI launches it, and a new
site onboarded as docs/operations.md gives it."""

import importlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterRunStatus

import article_rec_assets.ga4_sensor
import article_rec_assets.schedules
from article_rec_assets.partitions import SITES, site_key, window_key, window_partitions
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.schema import connect
from article_rec_assets.run_heartbeat import HEARTBEAT_TAG
from article_rec_assets.schedules import LABEL_ASSETS, MODEL_ASSETS, SCHEDULE, WINDOW_ASSETS, site_name
from article_rec_assets_tests.support import DEMO_END, keys
from article_rec_assets_tests.support.operating import Operated, operated_instance, postgres_or_sqlite_url
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.sites import DemoSite, demo_site

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


def start_schedules(operated: Operated, at: datetime) -> None:
    for site in SITES:
        operated.start_schedule(site_name(site, SCHEDULE), at)


def test_two_scheduled_ticks_and_a_rerun_of_a_past_window(operated: Operated) -> None:
    start_schedules(operated, FIRST_TICK - timedelta(minutes=5))
    operated.tick_scheduler(FIRST_TICK + timedelta(minutes=1))
    operated.tick_scheduler(SECOND_TICK + timedelta(minutes=1))

    runs = operated.runs()
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2 * len(SITES), [
        (r.tags.get("dagster/partition"), r.status) for r in runs
    ]
    expected = sorted(
        (site, window_key(window_of(tick))) for tick in (FIRST_TICK, SECOND_TICK) for site in SITES
    )
    assert sorted((r.tags["site"], r.tags["dagster/partition"]) for r in runs) == expected
    assert {r.tags.get("dagster/schedule_name") for r in runs} == {site_name(s, SCHEDULE) for s in SITES}
    # Each run's worker beat while it ran (what run monitoring reads where it cannot see the pid).
    assert all(HEARTBEAT_TAG in r.tags for r in runs)
    engine = connect(operated.serving_url)
    try:
        for site in SITES:
            model = current_model(engine, site)
            assert model is not None and len(model.rows) > 0
            # The second tick's model serves: trained up to the end of its window.
            assert model.trained_until == window_of(SECOND_TICK) + timedelta(hours=2)
        model = operated.latest_metadata(SITE, "trained_model")
        assert model["window"] == window_key(window_of(SECOND_TICK)) and model["windows_read"] == 2
        # The second tick's backtest judged the model the first tick stored, without fitting it again.
        backtest = operated.latest_metadata(SITE, "recommendation_backtest")
        assert backtest["model"] == f"trained_model of window {window_key(window_of(FIRST_TICK))} (stored)"

        # An operator reruns the first tick's window (the UI's "materialize" of that partition):
        # the catalogue reads back what the first run stored, and nothing newer is replaced.
        first = window_key(window_of(FIRST_TICK))
        before = current_model(engine, SITE)
        run_id = operated.launch_job(
            SITE, "recommendations_job", first, at=SECOND_TICK + timedelta(minutes=30)
        )
        assert operated.instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
        catalogue = operated.latest_metadata(SITE, "article_catalogue", first)
        assert catalogue["paths_settled_by_cache"] > 0  # read back from the serving database
        after = current_model(engine, SITE)
        assert after.model_id == before.model_id
        published = operated.latest_metadata(SITE, "published_recommendations")
        assert (published["status"], published["window"]) == ("skipped", first)
    finally:
        engine.dispose()


def _table(operated: Operated, asset: str, site: str, window: datetime) -> pd.DataFrame:
    return pd.read_parquet(
        keys.window_table(Path(operated.instance.storage_directory()), site, asset, window)
    )


def _recommendations(operated: Operated, site: str) -> pd.DataFrame:
    return pd.read_parquet(
        keys.model_table(Path(operated.instance.storage_directory()), site, "article_recommendations")
    )


def _published(url: str, sites) -> dict:
    engine = connect(url)
    try:
        out = {}
        for site in sites:
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
        start_schedules(scheduled, ticks[0] - timedelta(minutes=5))
        for tick in ticks:
            scheduled.tick_scheduler(tick + timedelta(minutes=1))
        assert {r.status for r in scheduled.runs()} == {DagsterRunStatus.SUCCESS}
        expected_tables = {
            (a, s, w): _table(scheduled, a, s, w) for a in WINDOW_ASSETS for s in SITES for w in windows
        }
        expected_recs = {s: _recommendations(scheduled, s) for s in SITES}
        expected_published = _published(scheduled_url, SITES)

    with (
        postgres_or_sqlite_url(storage, tmp_path / "backfilled") as backfill_url,
        operated_instance(storage, demo_data_dir, tmp_path / "backfilled", backfill_url) as backfilled,
    ):
        # The operator backfills each site's two windows (its window assets), as the UI's "Launch
        # backfill" does: one run per site reads both windows, oldest first. Then the site's
        # retrain job, once, trains as of the newest window ingested.
        window_keys = [window_key(w) for w in windows]
        for site in SITES:
            backfill_id = backfilled.launch_backfill(site, window_keys, list(WINDOW_ASSETS), at=later)
            backfilled.run_backfill_daemon(backfill_id, at=later)
            runs = backfilled.runs(tags={"dagster/backfill": backfill_id})
            assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]  # one run: the range
            assert runs[0].tags["dagster/asset_partition_range_start"] == window_keys[0]
            assert runs[0].tags["dagster/asset_partition_range_end"] == window_keys[-1]
            backfilled.launch_job(site, "retrain_job", None, at=later)
        assert {r.status for r in backfilled.runs()} == {DagsterRunStatus.SUCCESS}
        for site in SITES:
            for window in window_keys:  # a materialization, with its checks, per window
                assert backfilled.latest_metadata(site, "raw_events", window)["dagster/row_count"] > 0
            history = backfilled.instance.event_log_storage.get_asset_check_execution_history(
                keys.check(site, "raw_events", "volume_like_earlier_days"), limit=10
            )
            assert sorted(r.partition for r in history) == window_keys

        for (asset, site, window), expected in expected_tables.items():
            pd.testing.assert_frame_equal(_table(backfilled, asset, site, window), expected, obj=asset)
        for site, expected in expected_recs.items():
            pd.testing.assert_frame_equal(_recommendations(backfilled, site), expected)
        published = _published(backfill_url, SITES)
        assert published.keys() == expected_published.keys()
        for key, rows in published.items():
            pd.testing.assert_frame_equal(rows, expected_published[key], obj=str(key))

        # "Materialize all" over the same windows: the windows in one run, then one retrain (as of
        # the newest window of the range), which publishes nothing from a backfill.
        before = _current_model_ids(backfill_url)
        every_asset = [*WINDOW_ASSETS, *LABEL_ASSETS, *MODEL_ASSETS]
        backfill_id = backfilled.launch_backfill(SITE, window_keys, every_asset, at=later)
        backfilled.run_backfill_daemon(backfill_id, at=later)
        backfill_runs = backfilled.runs(tags={"dagster/backfill": backfill_id})
        assert [r.status for r in backfill_runs] == [DagsterRunStatus.SUCCESS] * 2
        retrains = backfilled.instance.fetch_materializations(
            site_key(SITE, "trained_model"), limit=10
        ).records
        retrain = [r for r in retrains if r.run_id in {run.run_id for run in backfill_runs}]
        assert len(retrain) == 1
        # The windows' run built their ranker examples; the retrain read them instead of building them.
        learned = {k: v.value for k, v in retrain[0].asset_materialization.metadata.items()}
        assert learned["label_windows_stored"] == len(window_keys) and learned[
            "label_windows_built_here"
        ] == 12 - len(window_keys)
        published = backfilled.latest_metadata(SITE, "published_recommendations")
        assert (published["status"], published["window"]) == ("skipped", window_keys[-1])
        assert {r.tags.get("article_rec/publish") for r in backfill_runs} == {None, "skipped"}
        assert _current_model_ids(backfill_url) == before


NEW_SITE = "new-gazette"
HISTORY_START = DEMO_END - timedelta(days=2)


def new_site() -> DemoSite:
    """A site file as an operator adds it: its own bucket, catalogue and history start."""
    base = demo_site(SITES[SITE])
    events = base.events.model_copy(update={"bucket": "new-gazette-events"})
    catalogue = base.articles.catalogue.model_copy(update={"path": "new-gazette/catalogue.jsonl"})
    articles = base.articles.model_copy(update={"catalogue": catalogue})
    demo = base.demo.model_copy(update={"seed": 23})
    return base.model_copy(
        update={
            "name": NEW_SITE,
            "events": events,
            "articles": articles,
            "demo": demo,
            "history_start": HISTORY_START,
        }
    )


@pytest.fixture
def added_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The new site's file added and the code location reloaded (its assets, jobs and schedule
    built from the sites); its bucket holds two days of history and the next window."""
    site = new_site()
    data = tmp_path / "data"
    generate_site(site, data, HISTORY_START, DEMO_END + timedelta(hours=2))
    monkeypatch.setitem(SITES, NEW_SITE, site)
    reload_site_jobs()  # operated_instance reloads the definitions
    yield data
    monkeypatch.delitem(SITES, NEW_SITE)
    reload_site_jobs()


def reload_site_jobs() -> None:
    """The sites' jobs and schedules built again from SITES, and the GA4 sensor that targets the
    jobs (it would otherwise hold the jobs of before, under the same names)."""
    importlib.reload(article_rec_assets.schedules)
    importlib.reload(article_rec_assets.ga4_sensor)


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_a_new_site_is_onboarded_as_the_operations_guide_says(
    storage: str, added_site: Path, tmp_path: Path
) -> None:
    at = DEMO_END + timedelta(minutes=15)
    with (
        postgres_or_sqlite_url(storage, tmp_path) as serving_url,
        operated_instance(storage, added_site, tmp_path, serving_url) as op,
    ):
        # Its windows start at its own history: the UI shows no empty months before it.
        history = window_partitions(NEW_SITE).get_partition_keys(current_time=at)
        assert history[0] == window_key(HISTORY_START) and len(history) == 24

        # 1. Backfill its history from the UI: the window assets over every window, one run.
        backfill_id = op.launch_backfill(NEW_SITE, history, list(WINDOW_ASSETS), at=at)
        op.run_backfill_daemon(backfill_id, at=at)
        runs = op.runs(tags={"dagster/backfill": backfill_id})
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]
        for asset in WINDOW_ASSETS:
            stored = op.instance.get_materialized_partitions(site_key(NEW_SITE, asset))
            assert stored == set(history), asset

        # 2. Retrain once, for the newest window: it is published (nothing serves the site yet).
        run_id = op.launch_job(NEW_SITE, "retrain_job", None, at=at)
        assert op.instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
        published = op.latest_metadata(NEW_SITE, "published_recommendations")
        assert (published["status"], published["window"]) == ("published", history[-1])
        assert op.latest_metadata(NEW_SITE, "trained_model")["windows_read"] == len(history)

        # 3. Turn the schedule on: the next tick ingests the next window and publishes from it.
        op.start_schedule(site_name(NEW_SITE, SCHEDULE), at)
        op.tick_scheduler(DEMO_END + timedelta(hours=2, minutes=16))
        tick = op.runs(tags={"dagster/schedule_name": site_name(NEW_SITE, SCHEDULE)})
        assert [(r.tags["dagster/partition"], r.status) for r in tick] == [
            (window_key(DEMO_END), DagsterRunStatus.SUCCESS)
        ]
        engine = connect(serving_url)
        try:
            assert current_model(engine, NEW_SITE).trained_until == DEMO_END + timedelta(hours=2)
        finally:
            engine.dispose()

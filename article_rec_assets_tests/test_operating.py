"""What operators do, through Dagster's own machinery, on SQLite and on PostgreSQL: the schedule
ticking twice, a rerun of a past window, a backfill launched as the UI launches it."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus

from article_rec_assets.logic.publishing import connect, current_model
from article_rec_assets.partitions import SITES, site_window_key
from article_rec_assets_tests.conftest import DEMO_END, postgres_schema_url
from article_rec_assets_tests.operating import Operated, operated_instance

# Two ticks inside the generated data: at 20:15 the 18:00 window, at 22:15 the 20:00 window.
FIRST_TICK = DEMO_END - timedelta(hours=3, minutes=45)
SECOND_TICK = FIRST_TICK + timedelta(hours=2)
SITE = "demo-tribune"


@pytest.fixture(params=["sqlite", "postgresql"])
def operated(request: pytest.FixtureRequest, demo_data_dir: Path, tmp_path: Path) -> Iterator[Operated]:
    if request.param == "sqlite":
        with operated_instance(
            "sqlite", demo_data_dir, tmp_path, f"sqlite:///{tmp_path / 'serving.db'}"
        ) as op:
            yield op
    else:
        with (
            postgres_schema_url() as serving_url,
            operated_instance("postgresql", demo_data_dir, tmp_path, serving_url) as op,
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

"""Each site's two-hour schedule asks for the site's newest complete window."""

import os
from datetime import UTC, datetime, timedelta

import pytest
from dagster import SkipReason, build_schedule_context, build_sensor_context, instance_for_test

from article_rec_assets.definitions import defs
from article_rec_assets.ga4_sensor import ga4_daily_tables_rewritten
from article_rec_assets.ingestion.ga4 import DAILY
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.schedules import (
    INGEST_WINDOW_JOB,
    RECOMMENDATIONS_JOB,
    SCHEDULE,
    SCHEDULES,
    site_name,
)
from article_rec_assets.settings.sites import GA4Settings
from article_rec_demo.generator.ga4 import ga4_event, write_ga4_table


@pytest.mark.parametrize(
    ("tick", "window"),
    [
        (datetime(2026, 3, 4, 14, 15, tzinfo=UTC), "2026-03-04-12:00"),
        (datetime(2026, 3, 4, 15, 59, tzinfo=UTC), "2026-03-04-12:00"),
        (datetime(2026, 3, 4, 0, 15, tzinfo=UTC), "2026-03-03-22:00"),
    ],
)
def test_one_run_per_site_for_the_newest_complete_window(tick: datetime, window: str) -> None:
    by_name = {schedule.name: schedule for schedule in SCHEDULES}
    repository = defs.get_repository_def()
    assert set(by_name) == {site_name(site, SCHEDULE) for site in SITES}
    for site in SITES:
        schedule = by_name[site_name(site, SCHEDULE)]
        assert schedule.job_name == site_name(site, RECOMMENDATIONS_JOB)
        assert schedule.cron_schedule == "15 */2 * * *"
        (request,) = schedule.evaluate_tick(
            build_schedule_context(scheduled_execution_time=tick, repository_def=repository)
        ).run_requests
        assert request.partition_key == window
        assert request.run_key == f"{site}|{window}" and request.tags["site"] == site


def test_a_ga4_daily_table_written_or_rewritten_reingests_its_days_windows(monkeypatch, tmp_path) -> None:
    site = SITES["demo-tribune"]
    ga4_site = site.model_copy(update={"events": site.events.model_copy(update={"ga4": GA4Settings()})})
    monkeypatch.setitem(SITES, site.name, ga4_site)
    bucket = EventBucket(root_dir=str(tmp_path))
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)

    def tick(cursor: str | None):
        with (
            instance_for_test() as instance,
            build_sensor_context(
                instance=instance, cursor=cursor, resources={"event_bucket": bucket}
            ) as context,
        ):
            return ga4_daily_tables_rewritten(context), context.cursor

    result, cursor = tick(None)
    assert isinstance(result, SkipReason)  # only the intraday table so far (none at all here)

    record = ga4_event("page_view", yesterday + timedelta(hours=9), "u1", 1, "https://demotribune.example/x")
    write_ga4_table(tmp_path, ga4_site, DAILY, yesterday, [record])
    result, cursor = tick(cursor)
    expected = [window_key(yesterday + timedelta(hours=2 * i)) for i in range(12)]
    assert [r.partition_key for r in result] == expected
    assert {r.job_name for r in result} == {site_name(site.name, INGEST_WINDOW_JOB)}
    assert all(r.tags["ga4_daily_table"] == f"{yesterday:%Y-%m-%d}" for r in result)

    again, cursor = tick(cursor)
    assert isinstance(again, SkipReason)  # seen: nothing to do

    os.utime(write_ga4_table(tmp_path, ga4_site, DAILY, yesterday, [record, record]), ns=(1, 1))
    rewritten, _ = tick(cursor)
    assert [r.partition_key for r in rewritten] == expected
    assert {r.run_key for r in rewritten}.isdisjoint(r.run_key for r in result)  # new runs, not deduplicated

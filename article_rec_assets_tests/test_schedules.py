"""The two-hour schedule asks, per site, for the newest complete window."""

from datetime import UTC, datetime

import pytest
from dagster import build_schedule_context

from article_rec_assets.partitions import SITES
from article_rec_assets.schedules import every_two_hours


@pytest.mark.parametrize(
    ("tick", "window"),
    [
        (datetime(2026, 3, 4, 14, 15, tzinfo=UTC), "2026-03-04-12:00"),
        (datetime(2026, 3, 4, 15, 59, tzinfo=UTC), "2026-03-04-12:00"),
        (datetime(2026, 3, 4, 0, 15, tzinfo=UTC), "2026-03-03-22:00"),
    ],
)
def test_one_run_per_site_for_the_newest_complete_window(tick: datetime, window: str) -> None:
    requests = list(every_two_hours(build_schedule_context(scheduled_execution_time=tick)))
    assert sorted(r.partition_key for r in requests) == [f"{site}|{window}" for site in sorted(SITES)]
    assert len({r.run_key for r in requests}) == len(SITES)
    assert {r.tags["site"] for r in requests} == set(SITES)

from datetime import UTC, datetime

from dagster import AssetKey

from article_rec_assets.assets import trailing_window_keys
from article_rec_assets.partitions import (
    SITES,
    earlier_windows,
    site_key,
    site_of_prefix,
    window_key,
    window_partitions,
    window_start,
)
from article_rec_assets.settings.windows import WINDOWS_PER_DAY, newest_complete_window, parse_window


def test_window_keys_are_the_window_start_and_the_site_is_the_key_prefix() -> None:
    assert window_key(datetime(2026, 3, 4, 12, tzinfo=UTC)) == "2026-03-04-12:00"
    assert window_start("2026-03-04-12:00") == datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert parse_window("2026-03-04-12:00") == (
        datetime(2026, 3, 4, 12, tzinfo=UTC),
        datetime(2026, 3, 4, 14, tzinfo=UTC),
    )
    assert site_key("demo-tribune", "raw_events") == AssetKey(["demo_tribune", "raw_events"])
    assert site_of_prefix("demo_tribune") == "demo-tribune" and site_of_prefix("other") is None


def test_newest_complete_window_skips_the_filling_one() -> None:
    assert newest_complete_window(datetime(2026, 3, 4, 13, 59, tzinfo=UTC)) == datetime(
        2026, 3, 4, 10, tzinfo=UTC
    )
    assert newest_complete_window(datetime(2026, 3, 4, 14, 0, tzinfo=UTC)) == datetime(
        2026, 3, 4, 12, tzinfo=UTC
    )


def test_trailing_windows_are_the_last_days_up_to_the_window() -> None:
    windows = trailing_window_keys("2026-03-04-12:00", days=2)
    assert len(windows) == 2 * WINDOWS_PER_DAY
    assert windows[0] == "2026-03-02-14:00" and windows[-1] == "2026-03-04-12:00"
    assert trailing_window_keys("2026-03-04-12:00", days=2, extra_windows=1)[0] == "2026-03-02-12:00"


def test_earlier_windows_map_to_the_windows_before_the_partition() -> None:
    partitions = window_partitions("demo-tribune")
    upstream = earlier_windows(3).get_upstream_mapped_partitions_result_for_partitions(
        partitions.empty_subset().with_partition_keys(["2026-03-04-12:00"]), partitions, partitions
    )
    assert sorted(upstream.partitions_subset.get_partition_keys()) == [
        "2026-03-04-06:00",
        "2026-03-04-08:00",
        "2026-03-04-10:00",
    ]


def test_every_site_has_its_own_windows() -> None:
    for site in SITES:
        assert window_partitions(site).get_first_partition_key() is not None

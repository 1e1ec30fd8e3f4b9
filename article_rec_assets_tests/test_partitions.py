from datetime import UTC, datetime

from dagster import MultiPartitionKey

from article_rec_assets.partitions import SITES, site_window_key, site_window_partitions, trailing_windows
from article_rec_assets.settings.windows import WINDOWS_PER_DAY, newest_complete_window, parse_window


def test_partition_keys_read_site_then_window() -> None:
    key = site_window_key("demo-tribune", datetime(2026, 3, 4, 12, tzinfo=UTC))
    assert str(key) == "demo-tribune|2026-03-04-12:00"
    assert parse_window("2026-03-04-12:00") == (
        datetime(2026, 3, 4, 12, tzinfo=UTC),
        datetime(2026, 3, 4, 14, tzinfo=UTC),
    )


def test_newest_complete_window_skips_the_filling_one() -> None:
    assert newest_complete_window(datetime(2026, 3, 4, 13, 59, tzinfo=UTC)) == datetime(
        2026, 3, 4, 10, tzinfo=UTC
    )
    assert newest_complete_window(datetime(2026, 3, 4, 14, 0, tzinfo=UTC)) == datetime(
        2026, 3, 4, 12, tzinfo=UTC
    )


def test_trailing_windows_map_to_the_same_site_over_the_last_days() -> None:
    mapping = trailing_windows(days=2)
    key = MultiPartitionKey({"site": "demo-tribune", "window": "2026-03-04-12:00"})
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        site_window_partitions.empty_subset().with_partition_keys([key]),
        site_window_partitions,
        site_window_partitions,
    ).partitions_subset.get_partition_keys()
    windows = sorted(k.keys_by_dimension["window"] for k in upstream)
    assert {k.keys_by_dimension["site"] for k in upstream} == {"demo-tribune"}
    assert len(windows) == 2 * WINDOWS_PER_DAY
    assert windows[0] == "2026-03-02-14:00" and windows[-1] == "2026-03-04-12:00"


def test_every_site_is_a_partition() -> None:
    assert site_window_partitions.get_partitions_def_for_dimension("site").get_partition_keys() == list(SITES)

"""Partitions: every event-level asset is partitioned by site x 2-hour UTC window.

Multi-partition keys join dimension values in alphabetical order of dimension name, so a key
reads `<site>|<window start>`, e.g. `demo-tribune|2026-03-01-12:00`.
"""

from __future__ import annotations

import warnings
from datetime import datetime

from dagster import (
    AssetCheckSpec,
    BetaWarning,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)
from dagster._utils.warnings import PreviewWarning

from article_rec_assets.settings import environment
from article_rec_assets.settings.sites import PACKAGED_SITES_DIR, SiteConfig, load_sites
from article_rec_assets.settings.windows import (
    WINDOW_HOURS,
    WINDOW_KEY_FORMAT,
    WINDOWS_PER_DAY,
)

SITES: dict[str, SiteConfig] = load_sites(environment.sites_dir() or PACKAGED_SITES_DIR)

window_partitions = TimeWindowPartitionsDefinition(
    cron_schedule=f"0 */{WINDOW_HOURS} * * *",
    start=environment.partitions_start(),
    fmt=WINDOW_KEY_FORMAT,
    timezone="UTC",
)
site_window_partitions = MultiPartitionsDefinition(
    {"site": StaticPartitionsDefinition(list(SITES)), "window": window_partitions}
)


def trailing_windows(days: int, extra_windows: int = 0) -> MultiPartitionMapping:
    """The same site's windows over the last `days` days (and `extra_windows` more before them),
    the partition's own window included."""
    with warnings.catch_warnings():  # MultiPartitionMapping is marked beta; it is what fits here
        warnings.simplefilter("ignore", BetaWarning)
        return MultiPartitionMapping(
            {
                "site": DimensionPartitionMapping("site", IdentityPartitionMapping()),
                "window": DimensionPartitionMapping(
                    "window",
                    TimeWindowPartitionMapping(start_offset=-(days * WINDOWS_PER_DAY - 1 + extra_windows)),
                ),
            }
        )


def earlier_windows(count: int) -> MultiPartitionMapping:
    """The same site's `count` windows before the partition's own (a self-dependency: what a
    window hands on to the next ones)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return MultiPartitionMapping(
            {
                "site": DimensionPartitionMapping("site", IdentityPartitionMapping()),
                "window": DimensionPartitionMapping(
                    "window", TimeWindowPartitionMapping(start_offset=-max(1, count), end_offset=-1)
                ),
            }
        )


def window_check(name: str, asset: str, description: str, blocking: bool = False) -> AssetCheckSpec:
    """A check partitioned like the assets: each result is recorded for the window it judged, so
    a failed window stays failed in the UI until that window passes (an unpartitioned check would
    show only the newest result of any window)."""
    with warnings.catch_warnings():  # partitioned checks are marked preview in Dagster 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            blocking=blocking,
            partitions_def=site_window_partitions,
        )


def site_window_key(site: str, window_start: datetime) -> MultiPartitionKey:
    return MultiPartitionKey({"site": site, "window": window_start.strftime(WINDOW_KEY_FORMAT)})

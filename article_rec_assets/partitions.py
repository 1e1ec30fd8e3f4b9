"""Partitions: each site's assets are its own, under a key prefix, and the window assets are
partitioned by the site's own 2-hour UTC windows, from the site's `history_start` on.

A window's partition key is its start, `YYYY-MM-DD-HH:MM` (e.g. `2026-03-01-12:00`); the site is
the asset key's prefix (`demo_tribune/raw_events`). Keys are parsed here and nowhere else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from dagster import (
    AssetCheckSpec,
    AssetKey,
    PartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)
from dagster._utils.warnings import PreviewWarning

from article_rec_assets.settings import environment
from article_rec_assets.settings.sites import PACKAGED_SITES_DIR, SiteConfig, load_sites
from article_rec_assets.settings.windows import WINDOW_HOURS, WINDOW_KEY_FORMAT, parse_window

SITES: dict[str, SiteConfig] = load_sites(environment.sites_dir() or PACKAGED_SITES_DIR)


def site_prefix(site: str) -> str:
    """The key prefix, group and pool name of a site's assets: its name as a Dagster name."""
    return site.replace("-", "_")


def site_of_prefix(prefix: str) -> str | None:
    """The site whose assets carry `prefix` (None: not one of ours)."""
    return next((name for name in SITES if site_prefix(name) == prefix), None)


def site_of_keys(keys: Iterable[AssetKey]) -> str | None:
    """The one site whose assets `keys` are (their prefix); None for keys of no site or of several."""
    sites = {site_of_prefix(key.path[0]) for key in keys if len(key.path) > 1}
    return sites.pop() if len(sites) == 1 else None


def site_key(site: str, asset: str) -> AssetKey:
    """`site_key("demo-tribune", "raw_events")` -> `demo_tribune/raw_events`."""
    return AssetKey([site_prefix(site), asset])


def site_pool(site: str) -> str:
    """The concurrency pool every asset of a site is in: the instance allows one run per pool at
    a time (dagster.yaml), so a site's schedule tick, backfill and reruns never overlap."""
    return f"site_{site_prefix(site)}"


@cache
def window_partitions(site: str) -> TimeWindowPartitionsDefinition:
    """The site's windows, from its history start (its YAML's `history_start`, else
    ARTICLE_REC_PARTITIONS_START) to the newest complete one."""
    start = SITES[site].history_start
    return TimeWindowPartitionsDefinition(
        cron_schedule=f"0 */{WINDOW_HOURS} * * *",
        start=start.strftime(WINDOW_KEY_FORMAT) if start else environment.partitions_start(),
        fmt=WINDOW_KEY_FORMAT,
        timezone="UTC",
    )


def window_key(window_start: datetime) -> str:
    return window_start.strftime(WINDOW_KEY_FORMAT)


def window_start(key: str) -> datetime:
    """A window's partition key -> its start (UTC). Raises ValueError for anything else."""
    return parse_window(key)[0]


def earlier_windows(count: int) -> TimeWindowPartitionMapping:
    """The `count` windows before the partition's own (a self-dependency: what a window hands on
    to the next ones)."""
    return TimeWindowPartitionMapping(start_offset=-max(1, count), end_offset=-1)


def window_check(
    name: str, asset: AssetKey, description: str, partitions_def: PartitionsDefinition | None, blocking=False
) -> AssetCheckSpec:
    """A check partitioned like its asset: each result is recorded for the window it judged, so a
    failed window stays failed in the UI until that window passes. An unpartitioned asset's check
    (`partitions_def` None) judges each materialization; its metadata names the window."""
    with warnings.catch_warnings():  # partitioned checks are marked preview in Dagster 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=partitions_def
        )

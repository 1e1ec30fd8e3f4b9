"""Where the tests find a site's assets: their keys, selections, step names and stored values."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, AssetSelection

from article_rec_assets.partitions import site_key, site_prefix, window_key


def key(site: str, asset: str) -> AssetKey:
    return site_key(site, asset)


def selection(site: str, *assets: str) -> AssetSelection:
    return AssetSelection.assets(*(site_key(site, asset) for asset in assets))


def ingestion(site: str) -> AssetSelection:
    """The window's ingestion multi-asset and its sessions (what the old `ingestion` group held)."""
    return selection(
        site,
        "delivered_events",
        "reading_state",
        "raw_events",
        "quarantined_event_lines",
        "sessionized_interactions",
    )


def ingest_only(site: str) -> AssetSelection:
    """The ingestion multi-asset alone (its four outputs and checks)."""
    return selection(site, "raw_events").required_multi_asset_neighbors()


def site_assets(site: str) -> AssetSelection:
    return AssetSelection.key_prefixes([site_prefix(site)])


def step(site: str, asset: str) -> str:
    """The step that materializes `asset` (the ingestion multi-asset's for its four outputs)."""
    if asset in ("delivered_events", "reading_state", "raw_events", "quarantined_event_lines"):
        asset = "ingest_window"
    return f"{site_prefix(site)}__{asset}"


def window_table(storage: Path, site: str, asset: str, window: datetime | str) -> Path:
    """A window asset's stored window."""
    name = window if isinstance(window, str) else window_key(window)
    return storage / site_prefix(site) / asset / f"{name}.parquet"


def window_folder(storage: Path, site: str, asset: str) -> Path:
    return storage / site_prefix(site) / asset


def model_table(storage: Path, site: str, asset: str) -> Path:
    """A model asset's stored table (one per site)."""
    return storage / site_prefix(site) / f"{asset}.parquet"


def check(site: str, asset: str, name: str) -> AssetCheckKey:
    return AssetCheckKey(site_key(site, asset), name)

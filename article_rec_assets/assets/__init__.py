"""Dagster assets: thin wrappers that load inputs, call the stage's logic, and describe the result."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, MultiPartitionKey, PartitionMapping

from article_rec_assets.partitions import SITES
from article_rec_assets.settings.sites import SiteConfig
from article_rec_assets.settings.windows import parse_window


def partition_site_and_window(
    context: AssetExecutionContext,
) -> tuple[SiteConfig, pd.Timestamp, pd.Timestamp]:
    """The site's settings and the [start, end) of the window being materialized."""
    key = context.partition_key
    dims = key.keys_by_dimension if isinstance(key, MultiPartitionKey) else None
    if dims is None:  # a plain string key "<site>|<window>"
        site_name, window = str(key).split("|")
    else:
        site_name, window = dims["site"], dims["window"]
    start, end = parse_window(window)
    return SITES[site_name], pd.Timestamp(start), pd.Timestamp(end)


def trailing_input(mapping: PartitionMapping, columns: list[str] | None = None) -> AssetIn:
    """A rolling window of upstream partitions; windows before a site's first data, or not yet
    backfilled, are simply absent. With `columns`, only those are read, text columns as
    categories shared by all partitions (io_managers: a fraction of the memory and time)."""
    metadata: dict = {"allow_missing_partitions": True}
    if columns is not None:
        metadata["columns"] = columns
    return AssetIn(partition_mapping=mapping, metadata=metadata)


def preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    return MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "_empty_")


def concat_partitions(frames: dict[str, pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Upstream partitions loaded through a partition mapping, as one frame (stable order).

    `empty` gives the columns when none of the upstream windows has been materialized yet.
    A trailing load's frames are slices of one frame in key order: that frame is the answer,
    not a copy (do not change it in place).
    """
    whole = getattr(frames, "whole", None)
    if whole is not None and len(whole) and len(whole) == sum(len(frame) for frame in frames.values()):
        return whole  # every slice still there (the keys are sorted when the load builds it)
    parts = [frames[k] for k in sorted(frames) if len(frames[k])]
    return pd.concat(parts, ignore_index=True) if parts else empty

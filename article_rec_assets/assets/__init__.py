"""Dagster assets: thin wrappers that load inputs, call the stage's logic, and describe the result.

Each site gets its own assets (`assets/sites.py`), under its key prefix and in its group:
- window assets (ingestion, catalogue), partitioned by the site's 2-hour windows; a run may hold
  one window (the schedule, a rerun) or a range of them (a backfill: a week of windows per run, oldest
  window first, state carried in memory), and records each window's materialization;
- model assets (training, recommendations, publishing), one value per site, trained as of one
  window (`as_of_window`): a scheduled run's window, or the newest window of a backfill.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    MetadataValue,
    ResourceParam,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, BACKFILL_ID_TAG, PARTITION_NAME_TAG

from article_rec_assets.partitions import site_key, window_key, window_start
from article_rec_assets.settings.windows import WINDOW_HOURS

# A backfill's run of a site's window assets covers this many windows at most, oldest first: a
# week. The backfill daemon submits a site's next week when the one before it is ingested, its
# ingestion and its sessions and catalogue as two runs (the first week is one): few runs for a
# history of weeks (each run's start costs seconds), and a failure costs at most a week's rerun.
WINDOWS_PER_BACKFILL_RUN = 7 * 24 // WINDOW_HOURS
WINDOW_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=WINDOWS_PER_BACKFILL_RUN)


# The IO manager a window asset writes its windows through, and a model asset reads its trailing
# windows through (io_managers.tables.WindowTables): Dagster hands an asset the resource it names.
WindowStore = ResourceParam[object]


def model_inputs(site: str) -> list[AssetKey]:
    """What a model asset reads of the site's windows, for the lineage (it loads the windows it
    needs itself: `trailing_interactions`, `window_of_store`)."""
    return [site_key(site, "sessionized_interactions"), site_key(site, "article_catalogue")]


def trailing_interactions(
    context: AssetExecutionContext,
    store,
    site: str,
    keys: list[str],
    columns: list[str],
    ids_only: Collection[str] = (),
) -> dict[str, pd.DataFrame]:
    """The site's stored interactions of the windows `keys` that exist, only `columns` (those of
    `ids_only` as codes without their text: `io_managers.tables.frames_sharing_categories`)."""
    return store.load_windows(
        site_key(site, "sessionized_interactions"), keys, context.log, columns, ids_only
    )


def window_of_store(store, asset_key: AssetKey, key: str, log) -> pd.DataFrame:
    """One stored window of a window asset; a clear error where it was never materialized."""
    found = store.load_windows(asset_key, [key], log)
    if key not in found:
        raise FileNotFoundError(
            f"{asset_key.to_user_string()} of window {key} is not materialized: materialize the "
            f"site's window assets for that window (or backfill them) first"
        )
    return found[key]


def windows_of_run(context: AssetExecutionContext) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The windows a window asset's step covers, oldest first: (key, start, end) each."""
    return [(key, *window_bounds(key)) for key in context.partition_keys]


# A run of the model assets alone (a retrain job has no partitions) is trained as of the window
# this tag names, where it is set (the Launchpad's tags); else as of the newest window ingested.
WINDOW_TAG = "article_rec/window"


def as_of_window(context: AssetExecutionContext, site: str) -> str:
    """The window a model asset is trained as of: the run's window (the schedule, a rerun), the
    newest window of the run's range, the window the run's `article_rec/window` tag names, else
    the newest window of the site that the run's backfill targets, else the newest window of the
    site's stored interactions (a retrain launched alone)."""
    tags = context.run.tags
    key = tags.get(ASSET_PARTITION_RANGE_END_TAG) or tags.get(PARTITION_NAME_TAG) or tags.get(WINDOW_TAG)
    if key:
        return key
    interactions = site_key(site, "sessionized_interactions")
    if backfill_id := tags.get(BACKFILL_ID_TAG):
        targeted = _backfill_windows(context.instance, backfill_id, interactions)
        if targeted:
            return max(targeted, key=window_start)
    stored = context.instance.get_materialized_partitions(interactions)
    if not stored:
        raise ValueError(
            f"no window of {site} has been ingested yet: backfill its history (the window assets) first"
        )
    return max(stored, key=window_start)


def _backfill_windows(instance: DagsterInstance, backfill_id: str, key: AssetKey) -> list[str]:
    backfill = instance.get_backfill(backfill_id)
    data = backfill.asset_backfill_data if backfill is not None else None
    if data is None:
        return []
    subset = data.target_subset.partitions_subsets_by_asset_key.get(key)
    return list(subset.get_partition_keys()) if subset is not None else []


def trailing_window_keys(as_of: str, days: float, extra_windows: int = 0) -> list[str]:
    """The window keys of the `days` days that end with window `as_of` (and `extra_windows` more
    before them), oldest first."""
    newest = window_start(as_of)
    count = math.ceil(days * 24 / WINDOW_HOURS) + extra_windows
    step = pd.Timedelta(hours=WINDOW_HOURS)
    return [window_key((pd.Timestamp(newest) - step * i).to_pydatetime()) for i in range(count - 1, -1, -1)]


def window_bounds(key: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(window_start(key))
    return start, start + pd.Timedelta(hours=WINDOW_HOURS)


def preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    return MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "_empty_")


def concat_partitions(frames: Mapping[str, pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Windows loaded by key, as one frame (stable order).

    `empty` gives the columns when none of the windows has been materialized yet. A trailing
    load's frames are slices of one frame in key order: that frame is the answer, not a copy (do
    not change it in place).
    """
    whole = getattr(frames, "whole", None)
    if whole is not None and len(whole) and len(whole) == sum(len(frame) for frame in frames.values()):
        return whole  # every slice still there (the keys are sorted when the load builds it)
    parts = [frames[k] for k in sorted(frames) if len(frames[k])]
    return pd.concat(parts, ignore_index=True) if parts else empty

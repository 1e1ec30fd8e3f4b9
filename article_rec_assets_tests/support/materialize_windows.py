"""Materialize a site's window assets over consecutive windows (one run over the range, as a
backfill does), or its model assets as of a window, in this process, as a run worker would: the
definitions' resources come from the environment, the instance is $DAGSTER_HOME's. For tests that
need a process of its own (its own DAGSTER_HOME, working folder and environment).

    python -m article_rec_assets_tests.support.materialize_windows window|model SITE WINDOW [WINDOW ...]
"""

from __future__ import annotations

import sys

from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from article_rec_assets import definitions
from article_rec_assets.assets import WINDOW_TAG
from article_rec_assets.schedules import MODEL_ASSETS, WINDOW_ASSETS
from article_rec_assets_tests.support.keys import selection


def main(argv: list[str]) -> None:
    stage, site, windows = argv[0], argv[1], argv[2:]
    if stage == "window":
        assets = WINDOW_ASSETS
        tags = {ASSET_PARTITION_RANGE_START_TAG: windows[0], ASSET_PARTITION_RANGE_END_TAG: windows[-1]}
    elif stage == "model":
        assets, tags = MODEL_ASSETS, {WINDOW_TAG: windows[-1]}
    else:
        raise SystemExit(f"unknown stage {stage!r}: window or model")
    with DagsterInstance.get() as instance:
        result = materialize(
            definitions.all_assets,
            selection=selection(site, *assets),
            tags=tags,
            resources=definitions.resources_for_environment(),
            instance=instance,
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"the {stage} assets of {site} over {windows[0]}..{windows[-1]} failed")
    print(f"materialized the {stage} assets of {site} over {len(windows)} windows")


if __name__ == "__main__":
    main(sys.argv[1:])

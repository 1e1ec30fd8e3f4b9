"""Materialize asset groups over windows in this process, as a run worker would: the definitions'
resources come from the environment, the instance is $DAGSTER_HOME's. For tests that need a
process of its own (its own DAGSTER_HOME, working folder and environment).

    python -m article_rec_assets_tests.materialize_windows GROUP[,GROUP] SITE WINDOW [WINDOW ...]
"""

from __future__ import annotations

import sys

from dagster import AssetSelection, DagsterInstance, materialize

from article_rec_assets import definitions
from article_rec_assets.partitions import site_window_key
from article_rec_assets.settings.windows import parse_window


def main(argv: list[str]) -> None:
    groups, site, windows = argv[0].split(","), argv[1], argv[2:]
    resources = definitions.resources_for_environment()
    with DagsterInstance.get() as instance:
        for window in windows:
            result = materialize(
                definitions.all_assets,
                selection=AssetSelection.groups(*groups),
                partition_key=site_window_key(site, parse_window(window)[0]),
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
            if not result.success:
                raise SystemExit(f"{groups} over {site} {window} failed")
    print(f"materialized {groups} over {len(windows)} windows of {site}")


if __name__ == "__main__":
    main(sys.argv[1:])

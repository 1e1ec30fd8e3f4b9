"""Table assets are stored as Parquet, one file per partition: `<base>/<asset>/<site>/<window>.parquet`."""

from __future__ import annotations

import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    OutputContext,
    UPathIOManager,
)
from upath import UPath


class _ParquetIOManager(UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        obj.to_parquet(tmp, index=False)
        tmp.rename(path)  # readers never see a half-written file

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(path)

    def load_input(self, context: InputContext):
        """A rolling window over upstream partitions, reading those that exist.

        Dagster's own handling logs one warning per missing partition (hundreds, for a 28-day
        window over a new site); this reports them once, as a count.
        """
        if not (
            context.has_asset_partitions
            and context.definition_metadata.get("allow_missing_partitions", False)
        ):
            return super().load_input(context)
        paths = self._get_paths_for_partitions(context)
        found = {key: path for key, path in paths.items() if path.exists()}
        if len(found) < len(paths):
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(paths) - len(found)} of {len(paths)} "
                f"upstream partitions are not materialized; reading the other {len(found)}"
            )
        return {key: self.load_from_path(context, path) for key, path in found.items()}


class ParquetIOManager(ConfigurableIOManagerFactory):
    """`base_dir` unset: the storage folder of the Dagster instance the run belongs to (as
    Dagster's own FilesystemIOManager does), so the values follow whichever DAGSTER_HOME runs."""

    base_dir: str | None = None

    def create_io_manager(self, context: InitResourceContext) -> _ParquetIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()
        return _ParquetIOManager(base_path=UPath(base_dir))

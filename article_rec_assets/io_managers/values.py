"""Values that are not tables (the model, the interaction matrix, the ranker's examples) pickled,
locally or in S3: a window's kept for a few days, a model's under the window it was trained as of,
the newest two kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from dagster import (
    ConfigurableIOManagerFactory,
    DagsterInstance,
    InitResourceContext,
    InputContext,
    OutputContext,
    RunsFilter,
)
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from upath import UPath

from article_rec_assets.io_managers.folders import LocalFolders, S3Folders
from article_rec_assets.io_managers.tables import WindowTables
from article_rec_assets.settings.windows import parse_window, window_key_before


class _KeepRecentWindows:
    """Pickled values partitioned by window are kept for `keep_days` before the newest written:
    writing a window's value removes the site's values of windows older than that, so storage
    stays bounded however long the schedule runs. A pruned window is rebuilt by re-materializing
    it. (The model assets, one value per site, keep their newest two: `_ValuesAsOfWindow`.)

    A window that a run not yet finished is working on is never removed: a backfill's runs
    write and read their windows side by side (days apart), and a window's rerun of only its
    later steps reads the value already stored."""

    keep_days: float | None = None

    def handle_output(self, context: OutputContext, obj) -> None:
        super().handle_output(context, obj)  # type: ignore[misc]
        if self.keep_days is None or not context.has_asset_partitions:
            return
        paths = list(self._get_paths_for_partitions(context).values())  # type: ignore[attr-defined]
        written = max(paths, key=lambda path: path.name)  # a single-run backfill writes several
        try:
            newest, _ = parse_window(written.name)
        except ValueError:
            return
        cutoff = newest - timedelta(days=self.keep_days)
        old = [name for name in self.window_names(written.parent) if _window_before(name, cutoff)]
        if not old:
            return
        in_flight = _windows_of_unfinished_runs(context.step_context.instance)
        removed = [name for name in old if not in_flight(name)]
        for name in removed:
            self.remove(written.parent / name)
        kept = len(old) - len(removed)
        context.log.info(
            f"removed {len(removed)} stored values of {context.asset_key.to_user_string()} older "
            f"than {self.keep_days:g} days before {written.name} (keep_days)"
            + (f"; kept {kept} that unfinished runs work on" if kept else "")
        )

    def load_input(self, context: InputContext):
        try:
            return super().load_input(context)  # type: ignore[misc]
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc}: the stored values of {context.asset_key.to_user_string()} are kept for "
                f"{self.keep_days:g} days; re-materialize it for this window"
            ) from exc


class _ValuesAsOfWindow:
    """A model asset's value (one per site, trained as of one window: the `window` of its output
    metadata) is stored under that window, `<site>/<asset>/<window>`, beside the value of the
    window before it, which the next window's backtest evaluates (`recommendation_backtest`);
    older ones are removed when a newer one is written. Dagster's own load of the asset reads the
    window of its latest materialization. A value without a window keeps the asset's own path."""

    def _get_path(self, context: InputContext | OutputContext) -> UPath:
        if context.has_asset_key and not context.has_asset_partitions:
            window = _as_of_window(context)
            if window is not None:
                return self.window_path(context.asset_key, window)  # type: ignore[attr-defined]
        return super()._get_path(context)  # type: ignore[misc]

    def handle_output(self, context: OutputContext, obj) -> None:
        super().handle_output(context, obj)  # type: ignore[misc]
        window = _as_of_window(context) if not context.has_asset_partitions else None
        if window is None:
            return
        # Only older ones: a retrain as of an earlier window (a backfill's) leaves the newest alone.
        oldest_kept = parse_window(window_key_before(window))[0]
        folder = self.window_path(context.asset_key, window).parent  # type: ignore[attr-defined]
        for name in self.window_names(folder):  # type: ignore[attr-defined]
            if _window_before(name, oldest_kept):
                self.remove(folder / name)  # type: ignore[attr-defined]


def _as_of_window(context: InputContext | OutputContext) -> str | None:
    """The window a model asset's value was trained as of: the output's metadata when it is
    written, the latest materialization's when it is read."""
    if isinstance(context, OutputContext):
        value = context.output_metadata.get("window")
    else:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        materialization = event.asset_materialization if event is not None else None
        value = materialization.metadata.get("window") if materialization is not None else None
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and _is_window(value) else None


def _is_window(name: str) -> bool:
    try:
        parse_window(name)
    except ValueError:
        return False
    return True


def _windows_of_unfinished_runs(instance: DagsterInstance) -> Callable[[str], bool]:
    """Whether a stored window's name is a window that a queued or running run targets (a queued
    rerun of a window's later steps reads its stored value): by its partition key
    (`<site>|<window>`) or, for a run over a range, between the range's ends."""
    windows: set[datetime] = set()
    ranges: list[tuple[datetime, datetime]] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=NOT_FINISHED_STATUSES)):
        if key := run.tags.get(PARTITION_NAME_TAG):
            windows.update(_windows_in_key(key))
        first = _windows_in_key(run.tags.get(ASSET_PARTITION_RANGE_START_TAG, ""))
        last = _windows_in_key(run.tags.get(ASSET_PARTITION_RANGE_END_TAG, ""))
        if first and last:
            ranges.append((min(first), max(last)))

    def in_flight(name: str) -> bool:
        try:
            start, _ = parse_window(name)
        except ValueError:
            return False
        return start in windows or any(low <= start <= high for low, high in ranges)

    return in_flight


def _windows_in_key(key: str) -> list[datetime]:
    """The window starts a partition key names (a multi-partition key joins its dimensions)."""
    starts = []
    for part in key.split("|") if key else []:
        try:
            starts.append(parse_window(part)[0])
        except ValueError:
            continue  # the site's name
    return starts


def _window_before(name: str, cutoff: datetime) -> bool:
    try:
        start, _ = parse_window(name)
    except ValueError:
        return False  # not a window's value: left alone
    return start < cutoff


class _PickleIOManager(
    _ValuesAsOfWindow, _KeepRecentWindows, LocalFolders, WindowTables, PickledObjectFilesystemIOManager
):
    pass


class _S3PickleIOManager(
    _ValuesAsOfWindow, _KeepRecentWindows, S3Folders, WindowTables, PickledObjectS3IOManager
):
    pass


# Two days of a site's windows, for pickled values partitioned by window.
KEEP_DAYS = 2.0


class PickleIOManager(ConfigurableIOManagerFactory):
    """Other values (the matrix, the model) pickled, as Dagster's FilesystemIOManager does, in
    the instance's storage folder unless `base_dir` is set; loads are reported as for tables.
    Values partitioned by window are kept for `keep_days` (None: forever) before the newest."""

    base_dir: str | None = None
    keep_days: float | None = KEEP_DAYS

    def create_io_manager(self, context: InitResourceContext) -> _PickleIOManager:
        manager = _PickleIOManager(base_dir=self.base_dir or context.instance.storage_directory())
        manager.keep_days = self.keep_days
        return manager


class S3PickleIOManager(ConfigurableIOManagerFactory):
    """Dagster's S3 pickle IO manager (same keys), with loads reported as for tables and each
    site's values kept for `keep_days` (None: forever) before its newest."""

    s3_resource: S3Resource
    s3_bucket: str
    s3_prefix: str = ""
    keep_days: float | None = KEEP_DAYS

    def create_io_manager(self, context: InitResourceContext) -> _S3PickleIOManager:
        manager = _S3PickleIOManager(self.s3_bucket, self.s3_resource.get_client(), self.s3_prefix)
        manager.keep_days = self.keep_days
        return manager

"""Table assets are stored as Parquet: a window asset one file per window,
`<base>/<site>/<asset>/<window>.parquet`, a model asset one file per site, `<base>/<site>/<asset>.parquet`;
in a local folder (the embedded default) or under an S3 prefix (production: runs share no disk).

S3 is written with boto3 through dagster-aws's own S3 IO manager, whose key layout and partition
handling this reuses with Parquet in place of pickles, rather than through `s3fs` (its aiobotocore
pins botocore to a narrower range than dagster-aws's boto3 needs: installing it would downgrade
botocore under boto3). An object appears whole or not at all (a single PUT, or a multipart upload
that only exists once completed), so a reader never loads a half-written one."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Collection, Mapping
from functools import partial

import botocore.exceptions
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    ConfigurableIOManagerFactory,
    Failure,
    InitResourceContext,
    InputContext,
    OutputContext,
    UPathIOManager,
)
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from upath import UPath

from article_rec_assets.io_managers.folders import LocalFolders, S3Folders

# How a load is reported in the step's log (the large-site benchmark reads it back).
LOADED = "loaded"


class WrittenWindows(dict):
    """What a window asset's step hands Dagster: the windows it wrote itself as each was done
    (window key -> rows), through `write_window`. A step over a range of windows (a backfill's
    run) then holds one window's tables at a time, not the range's."""


class LazyWindows(Mapping):
    """Upstream windows by key, each read when it is asked for and not kept: a range's run reads
    its windows one at a time, and a window's earlier windows only where it needs them."""

    def __init__(self, paths: dict[str, UPath], load: Callable[[UPath], object]) -> None:
        self._paths = dict(sorted(paths.items()))
        self._load = load

    def __getitem__(self, key: str):
        if key not in self._paths:
            raise KeyError(f"window {key} is not materialized")
        return self._load(self._paths[key])

    def __iter__(self):
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


class WindowTables:
    """Windows read and written by key, as well as through Dagster's own inputs and outputs.

    - An input whose metadata says `by_window` is a `LazyWindows` of the partitions that exist
      (windows before a site's first data, or not yet backfilled, are absent: counted once in
      the step's log, where Dagster's own handling would log a warning per window).
    - `write_window` stores one window of an asset; a step that wrote its windows so returns a
      `WrittenWindows`, which `handle_output` checks against the partitions Dagster expects.
    - `load_windows` reads the trailing windows a model asset needs (Dagster's partition mappings
      cannot map a window range onto an asset that is not partitioned by window). With
      `columns`, only those, as one Arrow table with each text column dictionary-encoded: the
      frames share one sorted set of categories, so they concatenate without copying text. For a
      site's 28 days (8.7M interactions) that is 0.3 GB in place of 3.4 GB of Python strings, and
      the groupbys downstream work on integer codes.
    Every load records what it read and how long it took in the step's log."""

    def window_path(self, asset_key: AssetKey, key: str) -> UPath:
        return self._with_extension(self._base_path.joinpath(*asset_key.path, key))  # type: ignore[attr-defined]

    def write_window(self, asset_key: AssetKey, key: str, value) -> None:
        path = self.window_path(asset_key, key)
        self.make_directory(path.parent)  # type: ignore[attr-defined]
        self.dump_to_path(None, value, path)  # type: ignore[attr-defined]

    def load_input(self, context: InputContext):
        started = time.perf_counter()
        if not (context.has_asset_partitions and context.definition_metadata.get("by_window", False)):
            value = super().load_input(context)  # type: ignore[misc]
            _describe_load(context.log, context.asset_key, value, 1, started)
            return value
        paths = self._get_paths_for_partitions(context)  # type: ignore[attr-defined]
        found = {key: path for key, path in paths.items() if self.path_exists(path)}  # type: ignore[attr-defined]
        if len(found) < len(paths):
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(paths) - len(found)} of {len(paths)} "
                f"upstream windows are not materialized; the other {len(found)} are read as needed"
            )
        return LazyWindows(found, partial(self.load_from_path, context))  # type: ignore[attr-defined]

    def load_windows(
        self,
        asset_key: AssetKey,
        keys: list[str],
        log,
        columns: list[str] | None = None,
        ids_only: Collection[str] = (),
    ) -> dict[str, object]:
        """The windows of `keys` that exist, by key (missing ones counted in `log`). Text columns
        named in `ids_only` keep their codes (in the text's order) but not the text
        (`frames_sharing_categories`)."""
        started = time.perf_counter()
        paths = {key: self.window_path(asset_key, key) for key in keys}
        found = {key: path for key, path in paths.items() if self.path_exists(path)}  # type: ignore[attr-defined]
        if len(found) < len(paths):
            log.info(
                f"{asset_key.to_user_string()}: {len(paths) - len(found)} of {len(paths)} windows are "
                f"not materialized; reading the other {len(found)}"
            )
        if columns is not None and found:
            tables = {key: self.load_table(path, list(columns)) for key, path in found.items()}  # type: ignore[attr-defined]
            value: dict = frames_sharing_categories(tables, ids_only)
            # Arrow's allocator keeps what it freed for reuse; handing it back leaves the step's
            # RSS at what the frames hold, not at the peak of the load.
            pa.default_memory_pool().release_unused()
        else:
            value = {key: self.load_from_path(None, path) for key, path in found.items()}  # type: ignore[attr-defined]
        _describe_load(log, asset_key, value, len(found), started)
        return value

    def handle_output(self, context: OutputContext, obj) -> None:
        if not isinstance(obj, WrittenWindows):
            super().handle_output(context, obj)  # type: ignore[misc]
            return
        expected = set(context.asset_partition_keys) if context.has_asset_partitions else set()
        if missing := sorted(expected - set(obj)):
            raise ValueError(
                f"{context.asset_key.to_user_string()}: the step did not write windows {missing[:5]}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )


def read_table_with_categories(source: pa.NativeFile | str, columns: list[str]) -> pa.Table:
    """`columns` of a Parquet file, its text columns dictionary-encoded (as Parquet stores them)."""
    schema = pq.read_schema(source)
    text = [name for name in columns if pa.types.is_string(schema.field(name).type)]
    if isinstance(source, pa.NativeFile):
        source.seek(0)
    return _one_dictionary_per_column(pq.read_table(source, columns=columns, read_dictionary=text))


def _one_dictionary_per_column(table: pa.Table) -> pa.Table:
    """Parquet's reader hands a large row group over in batches that each carry the row group's
    whole dictionary: 416k rows of a 16x site came as 4 chunks of one 143k-entry dictionary, and
    unifying 336 windows' dictionaries then hashed 177M entries for 140M rows (32 s of a 70 s
    load). Chunks that share one dictionary become one array over it."""
    for i, field in enumerate(table.schema):
        column = table.column(i)
        if not pa.types.is_dictionary(field.type) or column.num_chunks < 2:
            continue
        first = column.chunk(0).dictionary
        if not all(_same_dictionary(chunk.dictionary, first) for chunk in column.chunks[1:]):
            continue  # several row groups, each with its own dictionary: unify_dictionaries' work
        indices = pa.concat_arrays([chunk.indices for chunk in column.chunks])
        table = table.set_column(i, field, pa.chunked_array([pa.DictionaryArray.from_arrays(indices, first)]))
    return table


def _same_dictionary(a: pa.Array, b: pa.Array) -> bool:
    """The same buffers (the reader's batches of one row group), else the same values."""
    if len(a) == len(b) and [x.address if x else 0 for x in a.buffers()] == [
        x.address if x else 0 for x in b.buffers()
    ]:
        return True
    return a.equals(b)


class PartitionFrames(dict):
    """Frames by partition key that are slices, in key order, of one frame: `whole`, which
    `assets.concat_partitions` hands on as it is instead of copying the slices together again
    (a 16x site's 140M interactions: 4.6 GB)."""

    def __init__(self, frames: dict[str, pd.DataFrame], whole: pd.DataFrame) -> None:
        super().__init__(frames)
        self.whole = whole


def frames_sharing_categories(tables: dict[str, pa.Table], ids_only: Collection[str] = ()) -> PartitionFrames:
    """The partitions' tables as frames whose text columns share one set of sorted categories
    (sorted, so ordering by a column orders by its text); each frame is a slice of one frame.
    The columns of `ids_only` (ids that only tell rows apart: readers, sessions) get the ranks of
    their text as categories, 0, 1, ..., so their codes order as the text does and no Python
    string is made (a large site's week: ~15M reader and session ids, over 1 GB as strings).
    `tables` is emptied: its tables are released as the frame is built."""
    keys = sorted(tables)  # the order concat_partitions gives the partitions
    table = pa.concat_tables([_text_as_dictionary(tables[key], tables.values()) for key in keys])
    table = table.unify_dictionaries()
    sizes = {key: tables[key].num_rows for key in keys}
    tables.clear()  # the caller's tables: each column is copied once, then let go
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        columns[name] = (
            _sorted_categorical(column, with_text=name not in ids_only)
            if pa.types.is_dictionary(column.type)
            else column.to_pandas()
        )
        table = table.drop_columns([name])
        # The column's Arrow memory back to the system before the next is converted: the load's
        # peak is then about the frame, not the frame plus the tables.
        pa.default_memory_pool().release_unused()
    frame = pd.DataFrame(columns, copy=False)
    frames, offset = {}, 0
    for key in keys:
        rows = sizes[key]
        frames[key] = frame.iloc[offset : offset + rows]
        offset += rows
    return PartitionFrames(frames, frame)


def _text_as_dictionary(table: pa.Table, all_tables) -> pa.Table:
    """A partition's text columns dictionary-encoded like the other partitions', even where it
    stored one as another type (a column with no values is written as nulls or NaNs)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            continue
        if not any(pa.types.is_dictionary(t.schema.field(field.name).type) for t in all_tables):
            continue
        column = table.column(i)
        if column.null_count == len(column) or pa.types.is_floating(field.type):
            # No text in it (NaN is pandas' missing value): nulls, or the values as text.
            column = (
                pc.if_else(pc.is_nan(column), None, column) if pa.types.is_floating(field.type) else column
            )
        text = pc.cast(column, pa.string()).dictionary_encode()
        table = table.set_column(i, pa.field(field.name, text.type), text)
    return table


def _sorted_categorical(column: pa.ChunkedArray, with_text: bool = True) -> pd.Categorical:
    """A dictionary column as a pandas Categorical with its categories sorted (sorted by Arrow:
    a second for 650k session ids, where pandas takes three); without the text, its categories
    are the ranks 0, 1, ... of the sorted text (the same codes)."""
    combined = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    dictionary = combined.dictionary
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = (
        rank[pc.fill_null(combined.indices, 0).to_numpy()]
        if len(order)
        else np.zeros(len(combined), np.int32)
    )
    if combined.null_count:
        codes[~combined.is_valid().to_numpy(zero_copy_only=False)] = -1
    if not with_text:
        return pd.Categorical.from_codes(codes, categories=pd.RangeIndex(len(order)))
    categories = pd.Index(dictionary.take(order).to_numpy(zero_copy_only=False), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)


def _describe_load(log, asset_key: AssetKey, value: object, partitions: int, started: float) -> None:
    frames = value.values() if isinstance(value, dict) else [value]
    rows = sum(len(frame) for frame in frames if isinstance(frame, pd.DataFrame))
    log.info(
        f"{LOADED} {asset_key.to_user_string()}: {partitions} partitions, {rows:,} rows "
        f"in {time.perf_counter() - started:.3f} s"
    )


class UnreadableWindow(Failure):
    """A stored window's file that is not readable Parquet (cut short, overwritten, not Parquet at
    all): named, and never retried (a retry reads the same bytes)."""

    def __init__(self, where: str, error: Exception) -> None:
        super().__init__(
            description=f"{where} is not a readable Parquet file ({type(error).__name__}: {error}); "
            "materialize its window again to rewrite it",
            allow_retries=False,
        )


def _parquet(where: str, read: Callable[[], object]):
    """`read()`, whose failure to parse the file names it (`UnreadableWindow`)."""
    try:
        return read()
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnreadableWindow(where, exc) from exc


class _ParquetIOManager(LocalFolders, WindowTables, UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        obj.to_parquet(tmp, index=False)
        tmp.rename(path)  # readers never see a half-written file

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        return _parquet(str(path), lambda: pd.read_parquet(path))

    def load_table(self, path: UPath, columns: list[str]) -> pa.Table:
        return _parquet(str(path), lambda: read_table_with_categories(str(path), columns))


class _S3ParquetIOManager(S3Folders, WindowTables, PickledObjectS3IOManager):
    extension = ".parquet"

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=path.as_posix())["Body"].read()
        except self.s3.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"no object {self._uri_for_path(path)}") from exc
        return _parquet(self._uri_for_path(path), lambda: pd.read_parquet(io.BytesIO(body)))

    def load_table(self, path: UPath, columns: list[str]) -> pa.Table:
        body = self.s3.get_object(Bucket=self.bucket, Key=path.as_posix())["Body"].read()
        return _parquet(
            self._uri_for_path(path), lambda: read_table_with_categories(pa.BufferReader(body), columns)
        )

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False)
        buffer.seek(0)
        self.s3.upload_fileobj(buffer, self.bucket, path.as_posix())

    def path_exists(self, path: UPath) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=path.as_posix())
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


class ParquetIOManager(ConfigurableIOManagerFactory):
    """`base_dir` unset: the storage folder of the Dagster instance the run belongs to (as
    Dagster's own FilesystemIOManager does), so the values follow whichever DAGSTER_HOME runs."""

    base_dir: str | None = None

    def create_io_manager(self, context: InitResourceContext) -> _ParquetIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()
        return _ParquetIOManager(base_path=UPath(base_dir))


class S3ParquetIOManager(ConfigurableIOManagerFactory):
    """Tables as Parquet under `s3://<s3_bucket>/<s3_prefix>/`, same layout as the local folder."""

    s3_resource: S3Resource
    s3_bucket: str
    s3_prefix: str = ""

    def create_io_manager(self, context: InitResourceContext) -> _S3ParquetIOManager:
        return _S3ParquetIOManager(self.s3_bucket, self.s3_resource.get_client(), self.s3_prefix)

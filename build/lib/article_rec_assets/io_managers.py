"""Table assets are stored as Parquet, one file per partition: `<base>/<asset>/<site>/<window>.parquet`,
in a local folder (the embedded default) or under an S3 prefix (production: runs share no disk).

S3 is written with boto3 through dagster-aws's own S3 IO manager, whose key layout and partition
handling this reuses with Parquet in place of pickles, rather than through `s3fs` (its aiobotocore
pins botocore to a narrower range than dagster-aws's boto3 needs: installing it would downgrade
botocore under boto3). An object appears whole or not at all (a single PUT, or a multipart upload
that only exists once completed), so a reader never loads a half-written one."""

from __future__ import annotations

import io

import botocore.exceptions
import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    OutputContext,
    UPathIOManager,
)
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from upath import UPath


class _MissingPartitionsOnce:
    """A rolling window over upstream partitions reads those that exist.

    Dagster's own handling logs one warning per missing partition (hundreds, for a 28-day
    window over a new site); this reports them once, as a count."""

    def load_input(self, context: InputContext):
        if not (
            context.has_asset_partitions
            and context.definition_metadata.get("allow_missing_partitions", False)
        ):
            return super().load_input(context)  # type: ignore[misc]
        paths = self._get_paths_for_partitions(context)  # type: ignore[attr-defined]
        found = {key: path for key, path in paths.items() if self.path_exists(path)}  # type: ignore[attr-defined]
        if len(found) < len(paths):
            context.log.info(
                f"{context.asset_key.to_user_string()}: {len(paths) - len(found)} of {len(paths)} "
                f"upstream partitions are not materialized; reading the other {len(found)}"
            )
        return {key: self.load_from_path(context, path) for key, path in found.items()}  # type: ignore[attr-defined]


class _ParquetIOManager(_MissingPartitionsOnce, UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        obj.to_parquet(tmp, index=False)
        tmp.rename(path)  # readers never see a half-written file

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(path)


class _S3ParquetIOManager(_MissingPartitionsOnce, PickledObjectS3IOManager):
    extension = ".parquet"

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=path.as_posix())["Body"].read()
        except self.s3.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"no object {self._uri_for_path(path)}") from exc
        return pd.read_parquet(io.BytesIO(body))

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

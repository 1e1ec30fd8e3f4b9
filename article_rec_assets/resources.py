"""Resources: where events, catalogues and the serving database live."""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field
from sqlalchemy import Engine

from article_rec_assets.catalogue.resolver import CatalogueCache, Resolution, resolve_paths
from article_rec_assets.ingestion.bucket import hour_folder
from article_rec_assets.publishing.schema import connect
from article_rec_assets.settings.sites import SiteConfig


class EventReadError(RuntimeError):
    """An object of a window could not be listed or read, even after retries. The window fails
    rather than being published with events missing."""


class EventBucket(ConfigurableResource):
    """The sites' Snowplow event buckets: S3 (through the nested `s3` resource) or, without it, a
    local folder laid out like S3 (`<root>/buckets/<bucket>/<prefix>/enriched/good/YYYY/MM/DD/HH/`).

    Each site's YAML names its bucket and prefix (`events.bucket`, `events.prefix`). Transient S3
    errors (5xx, throttling, dropped connections) are retried by botocore in its standard mode,
    with jittered exponential backoff; a body cut off mid-download is fetched again here. Either
    way a request gets `s3_attempts(s3)` attempts in all. What still fails raises `EventReadError`
    naming the bucket, the key and the window: a window is never read as emptier than it is.
    """

    root_dir: str = Field(default="", description="Local folder holding `buckets/<bucket>/...` (no `s3`).")
    s3: S3Resource | None = Field(default=None, description="Read the buckets from S3 with this client.")
    list_page_size: int = Field(default=1000, gt=0, le=1000, description="Keys per list_objects_v2 page.")
    max_concurrent_reads: int = Field(default=8, gt=0, description="Objects downloaded at once (S3).")
    read_retry_backoff_seconds: float = Field(
        default=0.2, ge=0, description="First pause before downloading a cut-off body again; doubles."
    )

    def hour_objects(self, site: SiteConfig, hour: datetime) -> list[str]:
        """Keys of the objects in one hour folder, sorted (S3 keys, or paths under `root_dir`).

        A missing or empty folder is an hour without events, not an error."""
        if self.s3 is not None:
            return self._s3_hour_keys(self.s3.get_client(), site, hour, window=None)
        return [str(path.relative_to(self._root())) for path in self._local_hour_paths(site, hour)]

    def window_objects(self, site: SiteConfig, start: datetime, end: datetime) -> Iterator[tuple[str, bytes]]:
        """(key, bytes) of every object in the hour folders of [start, end), sorted by key.

        Keys are `s3://<bucket>/<key>` from S3, paths relative to `root_dir` from the local folder."""
        window = f"window [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) of site {site.name!r}"
        folders = [s3_hour_prefix(site, hour).rstrip("/") for hour in _hours(start, end)]
        yield from self.folder_objects(site, folders, window)

    def folder_keys(self, site: SiteConfig, folder: str, what: str = "") -> list[str]:
        """Keys of the objects directly in a folder of the site's bucket (`folder` relative to the
        bucket), sorted; a missing folder has none."""
        if self.s3 is not None:
            return self._s3_folder_keys(self.s3.get_client(), site, folder, what or folder)
        root = self._root()
        return [str(path.relative_to(root)) for path in self._local_folder_paths(site, folder)]

    def folder_fingerprint(self, site: SiteConfig, folder: str) -> str | None:
        """A digest of a folder's object names, sizes and versions (S3 ETags, local modification
        times), which changes when an object is added, replaced or removed; None: no objects."""
        if self.s3 is not None:
            items = self._s3_folder_items(self.s3.get_client(), site, folder, folder)
            listed = sorted((i["Key"], i.get("Size", 0), str(i.get("ETag", ""))) for i in items)
        else:
            paths = self._local_folder_paths(site, folder)
            listed = [(p.name, (st := p.stat()).st_size, str(st.st_mtime_ns)) for p in paths]
        if not listed:
            return None
        return hashlib.sha256(repr(listed).encode()).hexdigest()[:16]

    def folder_objects(
        self, site: SiteConfig, folders: Iterable[str], what: str = ""
    ) -> Iterator[tuple[str, bytes]]:
        """(key, bytes) of every object in the folders (relative to the site's bucket), folder by
        folder, each sorted by key. `what` names the read in errors (a window, a day)."""
        if self.s3 is not None:
            yield from self._s3_objects(self.s3, site, folders, what)
            return
        root = self._root()
        for folder in folders:
            for path in self._local_folder_paths(site, folder):
                yield str(path.relative_to(root)), path.read_bytes()

    # Local folder

    def _root(self) -> Path:
        if not self.root_dir:
            raise ValueError("EventBucket needs either `root_dir` (a local folder) or `s3`")
        return Path(self.root_dir)

    def _local_hour_paths(self, site: SiteConfig, hour: datetime) -> list[Path]:
        return self._local_folder_paths(site, s3_hour_prefix(site, hour).rstrip("/"))

    def _local_folder_paths(self, site: SiteConfig, folder: str) -> list[Path]:
        path = self._root() / "buckets" / site.events.bucket / folder
        return sorted(p for p in path.glob("*") if p.is_file()) if path.is_dir() else []

    # S3

    def _s3_objects(
        self, s3: S3Resource, site: SiteConfig, folders: Iterable[str], what: str
    ) -> Iterator[tuple[str, bytes]]:
        client = s3.get_client()
        bucket = site.events.bucket
        # Downloads run ahead of the caller by at most `max_concurrent_reads` objects, in key order.
        pending: deque[Future[bytes]] = deque()
        keys: deque[str] = deque()
        with ThreadPoolExecutor(self.max_concurrent_reads, thread_name_prefix="event-bucket") as pool:
            try:
                for folder in folders:
                    for key in self._s3_folder_keys(client, site, folder, what):
                        if len(pending) >= self.max_concurrent_reads:
                            yield f"s3://{bucket}/{keys.popleft()}", pending.popleft().result()
                        keys.append(key)
                        pending.append(pool.submit(self._s3_read, client, s3_attempts(s3), bucket, key, what))
                while pending:
                    yield f"s3://{bucket}/{keys.popleft()}", pending.popleft().result()
            finally:
                for future in pending:  # the caller stopped early, or a read failed
                    future.cancel()

    def _s3_hour_keys(self, client, site: SiteConfig, hour: datetime, window: str | None) -> list[str]:
        folder = s3_hour_prefix(site, hour).rstrip("/")
        return self._s3_folder_keys(client, site, folder, window or f"hour {hour:%Y-%m-%d %H}:00")

    def _s3_folder_keys(self, client, site: SiteConfig, folder: str, what: str) -> list[str]:
        return sorted(item["Key"] for item in self._s3_folder_items(client, site, folder, what))

    def _s3_folder_items(self, client, site: SiteConfig, folder: str, what: str) -> list[dict]:
        bucket = site.events.bucket
        prefix = f"{folder}/"
        paginator = client.get_paginator("list_objects_v2")
        try:
            items = [
                item
                for page in paginator.paginate(
                    Bucket=bucket,
                    Prefix=prefix,
                    Delimiter="/",  # the folder's own objects, as the local glob; not sub-folders
                    PaginationConfig={"PageSize": self.list_page_size},
                )
                for item in page.get("Contents", ())
                if not item["Key"].endswith("/")  # a console-made "folder" marker, not an object
            ]
        except (BotoCoreError, ClientError) as exc:
            raise EventReadError(f"could not list s3://{bucket}/{prefix} ({what}): {_describe(exc)}") from exc
        return items

    def _s3_read(self, client, attempts: int, bucket: str, key: str, window: str) -> bytes:
        for attempt in range(1, attempts + 1):
            try:
                # botocore retries transient errors (5xx, throttling, connection errors) itself.
                response = client.get_object(Bucket=bucket, Key=key)
            except (BotoCoreError, ClientError) as exc:
                raise EventReadError(
                    f"could not read s3://{bucket}/{key} ({window}): {_describe(exc)}"
                ) from exc
            try:
                return response["Body"].read()
            except _BODY_ERRORS as exc:
                # A body cut off mid-download is not retried by botocore: fetch the object again.
                response["Body"].close()
                if attempt == attempts:
                    raise EventReadError(
                        f"could not read s3://{bucket}/{key} ({window}): body cut off "
                        f"{attempts} times: {_describe(exc)}"
                    ) from exc
                time.sleep(self.read_retry_backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")


def s3_attempts(s3: S3Resource) -> int:
    """Attempts per request in all. dagster-aws hands `max_attempts` to botocore as its `retries`
    `max_attempts`, which botocore counts as retries after the first attempt (it sets
    total_max_attempts = max_attempts + 1), whatever the field's description says."""
    return s3.max_attempts + 1


_BODY_ERRORS = (IncompleteReadError, ResponseStreamingError, ReadTimeoutError, ConnectionClosedError)


def s3_hour_prefix(site: SiteConfig, hour: datetime) -> str:
    """The S3 key prefix of a site's hour folder: `<prefix>/enriched/good/YYYY/MM/DD/HH/`."""
    prefix = site.events.prefix.strip("/")
    return f"{prefix}/{hour_folder(hour)}/" if prefix else f"{hour_folder(hour)}/"


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += timedelta(hours=1)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
        tried = f" after {attempts + 1} attempts" if attempts is not None else ""
        return f"{error.get('Code', 'error')} {error.get('Message', '')}".strip() + tried
    return f"{type(exc).__name__}: {exc}"


class CatalogueSources(ConfigurableResource):
    """Where each site's article metadata comes from, as its YAML's `articles.catalogue` says:
    a catalogue file under `files_dir`, or the newsroom's WordPress or JSON articles API."""

    files_dir: str

    def resolve(
        self, site: SiteConfig, paths: Iterable[str] | Mapping[str, int], cache: CatalogueCache, now: datetime
    ) -> Resolution:
        """Look up the paths the cache does not settle (and refresh the last day's articles);
        `paths`: each path as often as it was read, or path -> reads."""
        return resolve_paths(
            paths,
            cache,
            site.articles.catalogue,
            site=site.name,
            path_pattern=site.articles.path_pattern,
            now=now,
            excluded_path_prefixes=site.articles.excluded_path_prefixes,
            max_fetch_attempts=site.articles.max_fetch_attempts,
            data_dir=self.files_dir,
            min_reads=site.articles.min_reads_to_look_up,
            max_new_paths=site.articles.max_new_paths_per_run,
            published_after=site.articles.published_after,
        )


class ServingDatabase(ConfigurableResource):
    """The database the recommendation API reads (PostgreSQL; SQLite for the embedded default)."""

    url: str
    keep_stale_models: int = 2
    # A publish waiting longer than this for a lock fails (its run fails, the serving model stays);
    # no statement runs longer than the statement timeout (PostgreSQL).
    lock_timeout_seconds: float = Field(30.0, gt=0)
    statement_timeout_seconds: float = Field(600.0, gt=0)

    def engine(self) -> Engine:
        return connect(self.url, self.statement_timeout_seconds, self.lock_timeout_seconds)

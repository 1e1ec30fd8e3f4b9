"""Resources: where events, catalogues and the serving database live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource
from sqlalchemy import Engine

from article_rec_assets.generator.clickstream import hour_folder, site_bucket_dir
from article_rec_assets.logic.catalogue import read_catalogue_file
from article_rec_assets.logic.publishing import connect
from article_rec_assets.sites import SiteConfig


class EventBucket(ConfigurableResource):
    """The sites' Snowplow event buckets, as a local folder laid out like S3
    (`<root>/buckets/<bucket>/<prefix>/enriched/good/YYYY/MM/DD/HH/`)."""

    root_dir: str

    def hour_objects(self, site: SiteConfig, hour: datetime) -> list[Path]:
        folder = site_bucket_dir(Path(self.root_dir), site) / hour_folder(hour)
        # A missing folder is an hour without events, not an error.
        return sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []

    def window_objects(self, site: SiteConfig, start: datetime, end: datetime) -> Iterator[tuple[str, bytes]]:
        """(key, bytes) of every object in the hour folders of [start, end)."""
        root = Path(self.root_dir)
        hour = start
        while hour < end:
            for path in self.hour_objects(site, hour):
                yield str(path.relative_to(root)), path.read_bytes()
            hour += timedelta(hours=1)


class CatalogueFiles(ConfigurableResource):
    """Article catalogues exported as files (the demo sites' source)."""

    root_dir: str

    def load(self, site: SiteConfig) -> pd.DataFrame:
        source = site.articles.catalogue
        if source.source != "file":
            raise ValueError(f"site {site.name!r}: catalogue source {source.source!r} is not supported")
        return read_catalogue_file(Path(self.root_dir) / source.path)


class ServingDatabase(ConfigurableResource):
    """The database the recommendation API reads (PostgreSQL; SQLite for the embedded default)."""

    url: str
    keep_stale_models: int = 2

    def engine(self) -> Engine:
        return connect(self.url)

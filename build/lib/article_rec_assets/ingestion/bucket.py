"""Where events lie: the Snowplow S3 loader's hour folders under a site's bucket and prefix."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from article_rec_assets.settings.sites import SiteConfig


def hour_folder(hour: datetime) -> str:
    """The Snowplow S3 loader's folder for a UTC hour."""
    return hour.strftime("enriched/good/%Y/%m/%d/%H")


def site_bucket_dir(data_dir: Path, site: SiteConfig) -> Path:
    """Where the local 'bucket' of a site lives under the data directory."""
    base = data_dir / "buckets" / site.events.bucket
    return base / site.events.prefix if site.events.prefix else base

"""Click logs read from files: the project's own click tables and the Globo.com G1 files (read
where they lie at run time, ../shared/data/globo-g1; nothing of them is copied into the repository).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from article_rec_assets.recommenders.click_log import ClickLog, click_log


def read_click_log(path: Path, articles: Path | None = None) -> ClickLog:
    """A click table from CSV (optionally gzipped) or Parquet; `articles` an optional table of
    (article_id, published_at)."""
    clicks = _read_table(path)
    published = None
    if articles is not None:
        table = _read_table(articles)
        if not {"article_id", "published_at"} <= set(table.columns):
            raise ValueError(f"{articles} needs columns article_id and published_at")
        published = table.set_index("article_id")["published_at"]
    return click_log(clicks, published)


def _read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


G1_CLICK_COLUMNS = {
    "user_id": np.int64,
    "session_id": np.int64,
    "click_article_id": np.int64,
    "click_timestamp": np.int64,
}


def read_g1(folder: Path) -> ClickLog:
    """The Globo.com G1 files as they lie in `folder` (clicks/clicks_hour_*.csv.gz and
    articles_metadata_partial.csv, whose created_at_ts is the publish time)."""
    folder = Path(folder)
    files = sorted((folder / "clicks").glob("clicks_hour_*.csv.gz"))
    if not files:
        raise FileNotFoundError(f"no clicks/clicks_hour_*.csv.gz under {folder}")
    frames = [pd.read_csv(f, usecols=list(G1_CLICK_COLUMNS), dtype=G1_CLICK_COLUMNS) for f in files]
    raw = pd.concat(frames, ignore_index=True)
    clicks = pd.DataFrame(
        {
            "reader_id": raw["user_id"],
            "session_id": raw["session_id"],
            "article_id": raw["click_article_id"],
            "timestamp": raw["click_timestamp"],
        }
    )
    published = None
    metadata = folder / "articles_metadata_partial.csv"
    if metadata.exists():
        meta = pd.read_csv(metadata, usecols=["article_id", "created_at_ts"])
        published = meta.set_index("article_id")["created_at_ts"].astype(np.int64)
    return click_log(clicks, published)

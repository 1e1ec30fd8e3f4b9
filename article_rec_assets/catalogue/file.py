"""A catalogue file as a source: CSV or JSON lines (external_id, path, title, published_at[,
exclude_reason]) relative to the data directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

from article_rec_assets.catalogue.articles import (
    CatalogueSourceDown,
    FetchFailed,
    MalformedAnswer,
    NotFound,
    Outcome,
    SourceArticle,
    clean_title,
    parse_time,
)
from article_rec_assets.settings.catalogue_sources import FileSource


def read_catalogue_file(path: Path) -> pd.DataFrame:
    """A catalogue exported as JSON lines or CSV (external_id, path, title, published_at)."""
    if not path.exists():
        raise FileNotFoundError(f"catalogue file {path} does not exist")
    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    missing = {"external_id", "path", "title", "published_at"} - set(frame.columns)
    if missing:
        raise ValueError(f"catalogue file {path} lacks columns {sorted(missing)}")
    return frame


def _fingerprint(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=8)
def _records_of(path: Path, mtime_ns: int, size: int) -> dict[str, Outcome]:
    """The file's articles by id, parsed once while the file is unchanged (its time and size are
    part of the key): a backfill's run resolves each of its windows against the same file, and a
    large site's file (22,000 articles) takes ~0.8 s to parse."""
    frame = read_catalogue_file(path)
    reasons = frame["exclude_reason"] if "exclude_reason" in frame.columns else None
    records: dict[str, Outcome] = {}
    for position, row in enumerate(frame.itertuples(index=False)):
        reason = None if reasons is None else reasons.iloc[position]
        external_id = str(row.external_id)
        try:  # a repeated id: the last row wins
            records[external_id] = SourceArticle(
                external_id=external_id,
                title=clean_title(row.title),
                published_at=parse_time(_scalar(row.published_at)),
                url=str(row.path) if _scalar(row.path) is not None and str(row.path) else None,
                exclude_reason=None if _scalar(reason) in (None, "") else str(reason),
            )
        except MalformedAnswer as exc:  # one bad row is that article's, not the file's
            records[external_id] = FetchFailed(f"{path.name} row {position + 1}: {exc}")
    return records


def _scalar(value: object) -> object:
    """A cell as a value: None for a missing one (NaN, None); a JSON object or list stays itself."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value


class FileArticles:
    """A catalogue file: every run lists the whole file (a file is cheap to read, and its
    articles are then known before anyone reads them)."""

    requests = 0

    def __init__(self, site: str, settings: FileSource, data_dir: str | Path | None = None) -> None:
        self.site = site
        path = Path(data_dir) / settings.path if data_dir is not None else Path(settings.path)
        if not path.is_file():
            raise CatalogueSourceDown(site, str(path), "the catalogue file does not exist")

        self.records = _records_of(path, *_fingerprint(path))

    def accepts_id(self, external_id: str) -> bool:
        return True

    def fetch(self, external_ids: Sequence[str], modified_since: datetime) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = dict(self.records)
        for external_id in external_ids:
            outcomes.setdefault(external_id, NotFound("not in the catalogue file"))
        return outcomes

    def ensure_reachable(self) -> None:
        pass

    def close(self) -> None:
        pass

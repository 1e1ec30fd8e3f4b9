"""Each GA4 export file's parse, kept beside the site's windows so the day's later windows read it
instead of parsing the file again."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from upath import UPath

from article_rec_assets.ingestion.ga4 import RECORD_DTYPES, REJECT_FRAME_DTYPES, GA4Records
from article_rec_assets.io_managers.tables import UnreadableWindow


class StoredGA4Parses:
    """The parse of each GA4 export file, kept in the table store beside the site's windows
    (`<site>/ga4_parsed_files/<YYYYMMDD>-<digest>-records.parquet` and `-rejects.parquet`) so
    that the day's other windows, and the windows of a day whose daily table stays as it is,
    read it instead of parsing the file again (`ingestion.ga4.ParsedFiles`). The digest covers
    the file's name and bytes, the bounds and the parser's version: a file rewritten or read
    under other settings is parsed again. Parses of property dates more than `KEEP_DAYS` before
    the newest kept are removed as others are written."""

    KEEP_DAYS = 7

    def __init__(self, store, site_prefix: str) -> None:
        self._store = store
        self._folder = store._base_path.joinpath(site_prefix, "ga4_parsed_files")

    def _path(self, day: date, digest: str, part: str) -> UPath:
        return self._folder / f"{day:%Y%m%d}-{digest}-{part}.parquet"

    def get(self, day: date, digest: str) -> GA4Records | None:
        try:
            records = self._store.load_from_path(None, self._path(day, digest, "records"))
            rejects = self._store.load_from_path(None, self._path(day, digest, "rejects"))
        except (FileNotFoundError, UnreadableWindow):
            return None  # not kept (or half removed, or damaged): the file is parsed again
        return GA4Records(records.astype(RECORD_DTYPES), rejects.astype(REJECT_FRAME_DTYPES), 1)

    def put(self, day: date, digest: str, parsed: GA4Records) -> None:
        # The rejects first: a parse is only found once its records are there too.
        self._store.dump_to_path(None, parsed.rejects, self._path(day, digest, "rejects"))
        self._store.dump_to_path(None, parsed.records, self._path(day, digest, "records"))
        names = self._store.window_names(self._folder)
        dates = {name[:8] for name in names if name[:8].isdigit()}
        newest = max(dates | {f"{day:%Y%m%d}"})
        cutoff = f"{datetime.strptime(newest, '%Y%m%d') - timedelta(days=self.KEEP_DAYS):%Y%m%d}"
        for name in names:
            if name[:8].isdigit() and name[:8] < cutoff and name[:8] != f"{day:%Y%m%d}":
                self._store.remove(self._folder / name)

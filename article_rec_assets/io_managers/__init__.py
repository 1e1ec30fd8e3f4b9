"""Where asset values are stored, in a local folder (the embedded default) or in S3 (runs share no
disk): tables.py, Parquet tables (a window asset one file per window, a model asset one per site),
read back as the windows an asset asks for; values.py, the pickled values (models, matrices, the
ranker's examples) and how long they are kept; ga4_parses.py, each GA4 export file's parse kept
for the day's later windows; folders.py, listing and removing in either store."""

from article_rec_assets.io_managers.ga4_parses import StoredGA4Parses
from article_rec_assets.io_managers.tables import (
    LOADED,
    LazyWindows,
    ParquetIOManager,
    PartitionFrames,
    S3ParquetIOManager,
    UnreadableWindow,
    WrittenWindows,
    frames_sharing_categories,
    read_table_with_categories,
)
from article_rec_assets.io_managers.values import PickleIOManager, S3PickleIOManager

__all__ = [
    "LOADED",
    "LazyWindows",
    "ParquetIOManager",
    "PartitionFrames",
    "PickleIOManager",
    "S3ParquetIOManager",
    "S3PickleIOManager",
    "StoredGA4Parses",
    "UnreadableWindow",
    "WrittenWindows",
    "frames_sharing_categories",
    "read_table_with_categories",
]

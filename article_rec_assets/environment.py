"""Where the platform finds its data, storage and serving database, read from the environment
in one place. Unset variables fall back to the embedded default under `./.demo/`, so a laptop
needs no server at all."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path(".demo")

# Variables a deployment sets. Secrets (database URLs with passwords) are only ever read through
# dagster.EnvVar, so they never appear in run config or the UI.
DATA_DIR_VAR = "ARTICLE_REC_DATA_DIR"
SITES_DIR_VAR = "ARTICLE_REC_SITES_DIR"
SERVING_DATABASE_URL_VAR = "SERVING_DATABASE_URL"
PARTITIONS_START_VAR = "ARTICLE_REC_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2026-01-01-00:00"


def data_dir() -> Path:
    """The local event bucket and catalogue files (embedded default)."""
    return Path(os.environ.get(DATA_DIR_VAR, DEFAULT_HOME / "data")).absolute()


def storage_dir() -> Path:
    """Where asset values (Parquet tables, models) are stored: beside the Dagster instance."""
    home = os.environ.get("DAGSTER_HOME")
    return (Path(home) if home else DEFAULT_HOME / "dagster_home").absolute() / "storage"


def default_serving_database_url() -> str:
    return f"sqlite:///{(DEFAULT_HOME / 'serving.db').absolute()}"


def serving_database_url_is_set() -> bool:
    return bool(os.environ.get(SERVING_DATABASE_URL_VAR))


def partitions_start() -> str:
    return os.environ.get(PARTITIONS_START_VAR, DEFAULT_PARTITIONS_START)


def sites_dir() -> Path | None:
    value = os.environ.get(SITES_DIR_VAR)
    return Path(value) if value else None

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

# Events from S3 instead of the local folder: set the source to `s3`, or an endpoint URL (MinIO,
# a test server; implies `s3`). Bucket and prefix are per site, in its YAML (`events.bucket`,
# `events.prefix`). Credentials are boto3's default chain (instance role, ~/.aws, ...) unless the
# AWS_* key variables are set, which are then passed on through dagster.EnvVar.
EVENTS_SOURCE_VAR = "ARTICLE_REC_EVENTS_SOURCE"  # `local` (default) or `s3`
S3_ENDPOINT_URL_VAR = "ARTICLE_REC_S3_ENDPOINT_URL"
S3_REGION_VAR = "ARTICLE_REC_S3_REGION"  # else AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config
S3_MAX_ATTEMPTS_VAR = "ARTICLE_REC_S3_MAX_ATTEMPTS"  # attempts per S3 request in all, the first included
DEFAULT_S3_MAX_ATTEMPTS = 5
AWS_ACCESS_KEY_ID_VAR = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY_VAR = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN_VAR = "AWS_SESSION_TOKEN"
EVENTS_SOURCES = ("local", "s3")

# Asset values (tables, the matrix, the model) in S3 rather than the instance's storage folder:
# `s3://bucket/prefix`. Unset: $DAGSTER_HOME/storage (the embedded default, one machine). Runs in
# their own containers (ECS, Kubernetes) need it: they share no disk.
ASSET_STORAGE_VAR = "ARTICLE_REC_ASSET_STORAGE"

# Alerts (sensors.py): failed runs and checks are posted as JSON to this URL; unset, logged.
ALERT_WEBHOOK_URL_VAR = "ARTICLE_REC_ALERT_WEBHOOK_URL"
# The Dagster UI's address, for the links in alerts.
UI_URL_VAR = "ARTICLE_REC_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"


def data_dir() -> Path:
    """The local event bucket and catalogue files (embedded default)."""
    return Path(os.environ.get(DATA_DIR_VAR, DEFAULT_HOME / "data")).absolute()


def default_serving_database_url() -> str:
    return f"sqlite:///{(DEFAULT_HOME / 'serving.db').absolute()}"


def serving_database_url_is_set() -> bool:
    # Set but empty counts as set: a deployment that meant to name its database fails loudly
    # (`publishing.schema.connect`) rather than publishing to a local SQLite file.
    return SERVING_DATABASE_URL_VAR in os.environ


def partitions_start() -> str:
    return os.environ.get(PARTITIONS_START_VAR, DEFAULT_PARTITIONS_START)


def events_source() -> str:
    """`s3` when the source says so or an S3 endpoint is configured, else `local`."""
    source = os.environ.get(EVENTS_SOURCE_VAR, "").strip().lower()
    if source and source not in EVENTS_SOURCES:
        raise ValueError(f"{EVENTS_SOURCE_VAR}={source!r}: expected one of {', '.join(EVENTS_SOURCES)}")
    if source == "s3" or (not source and os.environ.get(S3_ENDPOINT_URL_VAR)):
        return "s3"
    return "local"


def s3_endpoint_url() -> str | None:
    return os.environ.get(S3_ENDPOINT_URL_VAR) or None


def s3_region() -> str | None:
    return os.environ.get(S3_REGION_VAR) or None


def s3_max_attempts() -> int:
    value = os.environ.get(S3_MAX_ATTEMPTS_VAR)
    attempts = int(value) if value else DEFAULT_S3_MAX_ATTEMPTS
    if attempts < 1:
        raise ValueError(f"{S3_MAX_ATTEMPTS_VAR}={value!r}: needs at least 1 attempt")
    return attempts


def env_is_set(name: str) -> bool:
    return bool(os.environ.get(name))


def sites_dir() -> Path | None:
    value = os.environ.get(SITES_DIR_VAR)
    return Path(value) if value else None


def alert_webhook_url() -> str | None:
    return os.environ.get(ALERT_WEBHOOK_URL_VAR) or None


def ui_url() -> str:
    return os.environ.get(UI_URL_VAR) or DEFAULT_UI_URL


def asset_storage() -> tuple[str, str] | None:
    """(bucket, prefix) of `ARTICLE_REC_ASSET_STORAGE=s3://bucket/prefix`, or None (local)."""
    value = os.environ.get(ASSET_STORAGE_VAR, "").strip()
    if not value:
        return None
    if not value.startswith("s3://") or not value[5:].split("/", 1)[0]:
        raise ValueError(f"{ASSET_STORAGE_VAR} must be an s3://bucket/prefix URL, not {value!r}")
    bucket, _, prefix = value[5:].partition("/")
    return bucket, prefix.strip("/")

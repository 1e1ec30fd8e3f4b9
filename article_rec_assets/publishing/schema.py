"""Publishing: write recommendations into the serving database the recommendation API reads.

Tables and columns are exactly those of docs/contract.md, section 1. A model is written `pending`, its
rows are inserted, and only then, in one transaction, the previous `current` model of the same
(type, site) turns `stale` and the new one `current`; readers never see a half-written model.
"""

from __future__ import annotations

from datetime import datetime
from types import ModuleType

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    make_url,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

from article_rec_assets.publishing import postgresql, sqlite

DATABASES: dict[str, ModuleType] = {"postgresql": postgresql, "sqlite": sqlite}
metadata = MetaData()


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


article_table = Table(
    "article",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("path", Text, nullable=False, server_default=""),
    Column("site", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    UniqueConstraint("site", "external_id"),
)
model_table = Table(
    "model",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("site", Text, nullable=False, server_default=""),
    *_timestamps(),
    Index("model_type_status_site", "type", "status", "site"),
)
recommendation_table = Table(
    "recommendation",
    metadata,
    # BIGSERIAL in PostgreSQL (BIGINT with a sequence as its default, so COPY can leave it out);
    # SQLite only auto-numbers an INTEGER primary key.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("model.id", ondelete="CASCADE"), nullable=False),
    Column("source_entity_id", Text, nullable=False),
    Column(
        "recommended_article_id",
        Integer,
        ForeignKey("article.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("score", Numeric(7, 6), nullable=False),
    *_timestamps(),
    UniqueConstraint("model_id", "source_entity_id", "recommended_article_id"),
    Index("recommendation_source_entity_id_model_id", "source_entity_id", "model_id"),
    Index("recommendation_model_id", "model_id"),
    Index("recommendation_recommended_article_id", "recommended_article_id"),
)
path_table = Table(
    "path",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("site", Text, nullable=False, server_default=""),
    Column("external_id", Text, nullable=True),
    Column("exclude_reason", Text, nullable=True),
    *_timestamps(),
    Index("path_path_site", "path", "site"),
)


# Ours, beside the contract's tables (the API never reads it): how often a path that failed to
# resolve (`fetch_error`) was tried, so it is retried on later runs only up to a limit.
path_attempt_table = Table(
    "path_attempt",
    metadata,
    Column("site", Text, nullable=False, primary_key=True),
    Column("path", Text, nullable=False, primary_key=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
)


# Ours too: the end of the data each published model was trained on, so that a backtest compares
# a new model only with a published one that had not seen the backtest's window.
model_training_table = Table(
    "model_training",
    metadata,
    Column("model_id", Integer, ForeignKey("model.id", ondelete="CASCADE"), primary_key=True),
    Column("trained_until", DateTime(timezone=True), nullable=False),
)


def utc_datetime(value: datetime | pd.Timestamp | None) -> datetime | None:
    """A time as it crosses the database boundary, both ways: aware, in UTC. SQLite keeps no time
    zone (SQLAlchemy writes the wall time and drops the offset), so everything is written in UTC
    and a naive value read back is UTC; PostgreSQL returns its session's zone, turned into UTC."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def connect(
    url: str, statement_timeout_seconds: float | None = None, lock_timeout_seconds: float | None = None
) -> Engine:
    """An engine for a serving-database URL (`postgresql://...` or `sqlite:///file.db`).

    `lock_timeout_seconds`: a statement waiting this long for a lock (a swap held by another
    publish, a migration, a long read) fails rather than waiting forever; `statement_timeout_seconds`:
    no statement runs longer (PostgreSQL; SQLite has no such limit)."""
    if not url.strip():
        raise ValueError(
            "the serving database URL is empty (SERVING_DATABASE_URL): name a postgresql:// or sqlite:/// URL"
        )
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    parsed = make_url(url)
    name = parsed.get_backend_name()
    if name not in DATABASES:
        raise ValueError(f"serving database {name!r} is not supported: use PostgreSQL or SQLite")
    options = parsed.query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options
    connect_args = DATABASES[name].connect_args(statement_timeout_seconds, lock_timeout_seconds, options)
    engine = create_engine(url, connect_args=connect_args)
    DATABASES[name].configure(engine)
    return engine


def database(bind: Engine | Connection) -> ModuleType:
    """The module that holds what differs between the serving databases we support."""
    name = bind.dialect.name
    if name not in DATABASES:
        raise ValueError(f"serving database {name!r} is not supported: use PostgreSQL or SQLite")
    return DATABASES[name]


# The key under which creating the serving tables is serialized (`lock` of the database's module).
SCHEMA_LOCK_KEY = "article_rec_assets.serving_schema"


def ensure_schema(engine: Engine) -> None:
    """Create the serving tables that are missing; existing tables are used as they are.

    Two first runs at once (two sites' runs, each in a process or container of its own) would
    both find a table missing and both create it, and one would fail: on PostgreSQL they take
    turns under a lock (DDL is transactional there); SQLite checks and creates outside a
    transaction, so the one that loses the race finds the table made and checks again."""
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                database(conn).lock(conn, SCHEMA_LOCK_KEY)
                metadata.create_all(conn, checkfirst=True)
            return
        except (OperationalError, ProgrammingError) as exc:
            if "already exists" not in str(exc) or attempt == 2:
                raise

"""Publishing: write recommendations into the serving database the recommendation API reads.

Tables and columns are exactly those of CONTRACT.md section 1. A model is written `pending`, its
rows are inserted, and only then, in one transaction, the previous `current` model of the same
(type, site) turns `stale` and the new one `current`; readers never see a half-written model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
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
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from article_rec_assets.logic.catalogue_sources import CatalogueCache, Resolution

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


def connect(url: str) -> Engine:
    """An engine for a serving-database URL (`postgresql://...` or `sqlite:///file.db`)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # SQLite ignores ON DELETE CASCADE unless foreign keys are switched on per connection.
        event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create the serving tables that are missing; existing tables are used as they are."""
    metadata.create_all(engine, checkfirst=True)


@dataclass(frozen=True)
class PublishResult:
    model_ids: dict[str, int]
    recommendations: dict[str, int]
    articles_upserted: int
    stale_models_deleted: int
    seconds: float


def upsert_articles(engine: Engine, site: str, articles: pd.DataFrame) -> dict[str, int]:
    """Insert or refresh articles (unique on site + external_id); return external_id -> id."""
    with engine.begin() as conn:
        if len(articles):
            _upsert_articles(conn, site, articles)
        found = conn.execute(
            select(article_table.c.external_id, article_table.c.id).where(article_table.c.site == site)
        )
        return {external_id: article_id for external_id, article_id in found}


def _upsert_articles(conn, site: str, articles: pd.DataFrame) -> None:
    rows = [
        {
            "site": site,
            "external_id": str(r.external_id),
            "title": str(r.title),
            "path": str(r.path),
            "published_at": utc_datetime(r.published_at),
        }
        for r in articles.itertuples(index=False)
    ]
    statement = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(article_table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site", "external_id"],
            set_={
                "title": statement.excluded.title,
                "path": statement.excluded.path,
                "published_at": statement.excluded.published_at,
                "updated_at": func.now(),
            },
        ),
        rows,
    )


def _lock_model_slot(conn, model_type: str, site: str) -> None:
    """Serialize swaps per (type, site); SQLite serializes all writers anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"model:{model_type}:{site}"}
        )


def publish_recommendations(
    engine: Engine,
    site: str,
    recommendations: pd.DataFrame,
    catalogue: pd.DataFrame,
    keep_stale: int = 2,
    trained_until: datetime | None = None,
) -> PublishResult:
    """Publish each model type in `recommendations` for `site`, swapping atomically per type.
    `trained_until`: the end of the data the models were trained on (kept in `model_training`)."""
    started = time.perf_counter()
    ensure_schema(engine)
    used = set(recommendations["source_entity_id"]) | set(recommendations["recommended_external_id"])
    articles = catalogue[catalogue["external_id"].isin(used)]
    article_ids = upsert_articles(engine, site, articles)

    model_ids: dict[str, int] = {}
    counts: dict[str, int] = {}
    deleted = 0
    for model_type, recs in recommendations.groupby("model_type", sort=True):
        with engine.begin() as conn:
            model_id = conn.execute(
                insert(model_table)
                .values(type=model_type, site=site, status="pending")
                .returning(model_table.c.id)
            ).scalar_one()
            if trained_until is not None:
                trained_until = utc_datetime(trained_until)
                conn.execute(
                    insert(model_training_table).values(model_id=model_id, trained_until=trained_until)
                )
        try:
            rows = list(
                zip(
                    [model_id] * len(recs),
                    recs["source_entity_id"].astype(str),
                    [article_ids[target] for target in recs["recommended_external_id"]],
                    [f"{score:.6f}" for score in recs["score"]],
                    strict=True,
                )
            )
            write_recommendation_rows(engine, rows)
            deleted += _swap_current(engine, model_type, site, model_id, keep_stale)
        except BaseException:
            with engine.begin() as conn:
                conn.execute(update(model_table).where(model_table.c.id == model_id).values(status="failed"))
            raise
        model_ids[str(model_type)] = model_id
        counts[str(model_type)] = len(rows)
    return PublishResult(model_ids, counts, len(articles), deleted, time.perf_counter() - started)


RECOMMENDATION_COLUMNS = ("model_id", "source_entity_id", "recommended_article_id", "score")


def write_recommendation_rows(engine: Engine, rows: list[tuple[int, str, int, str]]) -> None:
    """Insert (model_id, source_entity_id, recommended_article_id, score) rows in one transaction:
    PostgreSQL's COPY where we have it (the driver escapes every value), batched inserts else."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            statement = f"COPY recommendation ({', '.join(RECOMMENDATION_COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            conn.execute(
                insert(recommendation_table),
                [dict(zip(RECOMMENDATION_COLUMNS, row, strict=True)) for row in rows],
            )


def _swap_current(engine: Engine, model_type: str, site: str, model_id: int, keep_stale: int) -> int:
    """In one transaction: current -> stale, ours -> current, old stale and debris deleted."""
    m = model_table.c
    slot = (m.type == model_type) & (m.site == site)
    with engine.begin() as conn:
        _lock_model_slot(conn, model_type, site)
        conn.execute(
            update(model_table)
            .where(slot & (m.status == "current"))
            .values(status="stale", updated_at=func.now())
        )
        conn.execute(
            update(model_table).where(m.id == model_id).values(status="current", updated_at=func.now())
        )
        stale_ids = (
            conn.execute(
                select(m.id).where(slot & (m.status == "stale")).order_by(m.id.desc()).offset(keep_stale)
            )
            .scalars()
            .all()
        )
        # Models left pending or failed by earlier crashed publishes are debris by now.
        debris = (
            conn.execute(select(m.id).where(slot & m.status.in_(("pending", "failed")) & (m.id < model_id)))
            .scalars()
            .all()
        )
        doomed = [*stale_ids, *debris]
        if doomed:
            conn.execute(delete(recommendation_table).where(recommendation_table.c.model_id.in_(doomed)))
            conn.execute(delete(model_table).where(m.id.in_(doomed)))
    return len(doomed)


def api_recommendations(
    engine: Engine, site: str, source_entity_id: str, size: int = 10, model_type: str = "article"
) -> list[tuple[str, str, float]]:
    """What the recommendation API answers for an article: the article model's rows, else the
    popularity fallback (CONTRACT.md section 1). Returns (external_id, title, score)."""
    r, m, a = recommendation_table.c, model_table.c, article_table.c

    def query(mtype: str, source: str):
        return (
            select(a.external_id, a.title, r.score)
            .select_from(
                recommendation_table.join(model_table, m.id == r.model_id).join(
                    article_table, a.id == r.recommended_article_id
                )
            )
            .where(m.type == mtype, m.status == "current", a.site == site, r.source_entity_id == source)
            .order_by(r.score.desc(), a.external_id)
            .limit(size)
        )

    with engine.connect() as conn:
        rows = conn.execute(query(model_type, source_entity_id)).all()
        if not rows:
            rows = conn.execute(query("popularity", "default")).all()
    return [(ext, title, float(score)) for ext, title, score in rows]


@dataclass(frozen=True)
class PublishedModel:
    model_id: int
    trained_until: datetime | None  # None: published without it (e.g. by the old job)
    rows: pd.DataFrame  # source_entity_id, recommended_external_id, score


def current_model(engine: Engine, site: str, model_type: str = "article") -> PublishedModel | None:
    """The site's `current` model of `model_type` with all its rows, or None."""
    m, t = model_table.c, model_training_table.c
    r, a = recommendation_table.c, article_table.c
    ensure_schema(engine)
    with engine.connect() as conn:
        found = conn.execute(
            select(m.id, t.trained_until)
            .select_from(model_table.outerjoin(model_training_table, t.model_id == m.id))
            .where(m.type == model_type, m.status == "current", m.site == site)
            .order_by(m.id.desc())
            .limit(1)
        ).first()
        if found is None:
            return None
        rows = conn.execute(
            select(r.source_entity_id, a.external_id, r.score)
            .select_from(recommendation_table.join(article_table, a.id == r.recommended_article_id))
            .where(r.model_id == found[0], a.site == site)
        ).all()
    trained_until = utc_datetime(found[1])
    frame = pd.DataFrame(
        {
            "source_entity_id": pd.array([row[0] for row in rows], dtype="string"),
            "recommended_external_id": pd.array([row[1] for row in rows], dtype="string"),
            "score": pd.array([float(row[2]) for row in rows], dtype="float64"),
        }
    )
    return PublishedModel(found[0], trained_until, frame)


def read_catalogue_cache(engine: Engine, site: str) -> CatalogueCache:
    """What earlier runs resolved for `site`: its `path` rows (with their attempts) and its
    `article` rows (with the exclude reason of the article's own path row)."""
    ensure_schema(engine)
    p, a, t = path_table.c, article_table.c, path_attempt_table.c
    with engine.connect() as conn:
        paths = pd.DataFrame(
            conn.execute(
                select(p.path, p.external_id, p.exclude_reason, func.coalesce(t.attempts, 0))
                .select_from(
                    path_table.outerjoin(path_attempt_table, (t.site == p.site) & (t.path == p.path))
                )
                .where(p.site == site)
                .order_by(p.id)
            ).all(),
            columns=["path", "external_id", "exclude_reason", "attempts"],
        )
        articles = pd.DataFrame(
            conn.execute(
                select(a.external_id, a.path, a.title, a.published_at, p.exclude_reason)
                .select_from(article_table.outerjoin(path_table, (p.site == a.site) & (p.path == a.path)))
                .where(a.site == site)
                .order_by(a.id, p.id)
            ).all(),
            columns=["external_id", "path", "title", "published_at", "exclude_reason"],
        )
    articles["published_at"] = pd.to_datetime(articles["published_at"], utc=True)  # naive from SQLite
    return CatalogueCache(paths, articles.drop_duplicates("external_id", keep="last"))


def write_catalogue_resolution(engine: Engine, site: str, resolution: Resolution) -> None:
    """Upsert a run's resolved paths and articles, in one transaction (bound parameters only)."""
    ensure_schema(engine)
    p, t = path_table.c, path_attempt_table.c
    paths = resolution.paths
    with engine.begin() as conn:
        if len(paths):
            names = paths["path"].astype(str).tolist()
            # `path` has no unique constraint (the old migrations made none): replace the rows.
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                conn.execute(delete(path_table).where((p.site == site) & p.path.in_(chunk)))
                conn.execute(delete(path_attempt_table).where((t.site == site) & t.path.in_(chunk)))
            rows = [
                {
                    "site": site,
                    "path": str(r.path),
                    "external_id": None if pd.isna(r.external_id) else str(r.external_id),
                    "exclude_reason": None if pd.isna(r.exclude_reason) else str(r.exclude_reason),
                }
                for r in paths.itertuples(index=False)
            ]
            conn.execute(insert(path_table), rows)
            conn.execute(
                insert(path_attempt_table),
                [
                    {"site": site, "path": str(r.path), "attempts": int(r.attempts)}
                    for r in paths.itertuples()
                ],
            )
        if len(resolution.articles):
            _upsert_articles(conn, site, resolution.articles)

"""Publishing a model: it is written `pending`, its rows inserted, and only then, in one
transaction, the previous `current` model of the same type and site becomes `stale` and the new
one `current`. A failed publish leaves the serving model as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import (
    Engine,
    delete,
    func,
    insert,
    select,
    update,
)

from article_rec_assets.publishing.articles import upsert_articles
from article_rec_assets.publishing.schema import (
    database,
    ensure_schema,
    model_table,
    model_training_table,
    recommendation_table,
    utc_datetime,
)


@dataclass(frozen=True)
class PublishResult:
    model_ids: dict[str, int]
    recommendations: dict[str, int]
    articles_upserted: int
    stale_models_deleted: int
    seconds: float


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
        database(conn).write_rows(conn, recommendation_table, RECOMMENDATION_COLUMNS, rows)


def _swap_current(engine: Engine, model_type: str, site: str, model_id: int, keep_stale: int) -> int:
    """In one transaction: current -> stale, ours -> current, old stale and debris deleted."""
    m = model_table.c
    slot = (m.type == model_type) & (m.site == site)
    with engine.begin() as conn:
        database(conn).lock(conn, f"model:{model_type}:{site}")  # one swap per slot at a time
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

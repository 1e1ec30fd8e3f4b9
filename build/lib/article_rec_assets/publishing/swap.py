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

    # Each model type's rows are written under a `pending` model first (the big writes, one
    # transaction each); then one transaction makes every new model current at once, so a cut
    # connection or a timeout never leaves a new article model beside an old popularity model.
    model_ids: dict[str, int] = {}
    counts: dict[str, int] = {}
    try:
        for model_type, recs in recommendations.groupby("model_type", sort=True):
            with engine.begin() as conn:
                model_id = conn.execute(
                    insert(model_table)
                    .values(type=model_type, site=site, status="pending")
                    .returning(model_table.c.id)
                ).scalar_one()
                if trained_until is not None:
                    conn.execute(
                        insert(model_training_table).values(
                            model_id=model_id, trained_until=utc_datetime(trained_until)
                        )
                    )
            model_ids[str(model_type)] = model_id
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
            counts[str(model_type)] = len(rows)
        deleted = _swap_current(engine, site, model_ids, keep_stale)
    except BaseException:
        _mark_failed(engine, list(model_ids.values()))
        raise
    return PublishResult(model_ids, counts, len(articles), deleted, time.perf_counter() - started)


def _mark_failed(engine: Engine, model_ids: list[int]) -> None:
    """Best effort after a failed publish: its pending models say so (the next publish deletes
    them either way); a database that is gone leaves them pending, which is as safe."""
    if not model_ids:
        return
    try:
        with engine.begin() as conn:
            m = model_table.c
            conn.execute(
                update(model_table)
                .where(m.id.in_(model_ids) & (m.status == "pending"))
                .values(status="failed")
            )
    except Exception:
        pass


RECOMMENDATION_COLUMNS = ("model_id", "source_entity_id", "recommended_article_id", "score")


def write_recommendation_rows(engine: Engine, rows: list[tuple[int, str, int, str]]) -> None:
    """Insert (model_id, source_entity_id, recommended_article_id, score) rows in one transaction:
    PostgreSQL's COPY where we have it (the driver escapes every value), batched inserts else."""
    with engine.begin() as conn:
        database(conn).write_rows(conn, recommendation_table, RECOMMENDATION_COLUMNS, rows)


def _swap_current(engine: Engine, site: str, model_ids: dict[str, int], keep_stale: int) -> int:
    """In one transaction, for every model type: current -> stale, ours -> current, old stale
    models and debris deleted. Returns how many models were deleted."""
    m = model_table.c
    doomed: list[int] = []
    with engine.begin() as conn:
        for model_type in sorted(model_ids):  # locks taken in one order: two publishes never deadlock
            database(conn).lock(conn, f"model:{model_type}:{site}")
        for model_type, model_id in sorted(model_ids.items()):
            slot = (m.type == model_type) & (m.site == site)
            conn.execute(
                update(model_table)
                .where(slot & (m.status == "current"))
                .values(status="stale", updated_at=func.now())
            )
            conn.execute(
                update(model_table).where(m.id == model_id).values(status="current", updated_at=func.now())
            )
            doomed += (
                conn.execute(
                    select(m.id).where(slot & (m.status == "stale")).order_by(m.id.desc()).offset(keep_stale)
                )
                .scalars()
                .all()
            )
            # Models left pending or failed by earlier crashed publishes are debris by now.
            doomed += (
                conn.execute(
                    select(m.id).where(slot & m.status.in_(("pending", "failed")) & (m.id < model_id))
                )
                .scalars()
                .all()
            )
        if doomed:
            conn.execute(delete(recommendation_table).where(recommendation_table.c.model_id.in_(doomed)))
            conn.execute(delete(model_table).where(m.id.in_(doomed)))
    return len(doomed)

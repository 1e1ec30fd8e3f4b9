"""The serving database read as the recommendation API reads it (docs/contract.md, section 1), and the
model currently served.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import (
    Engine,
    select,
)

from article_rec_assets.publishing.schema import (
    article_table,
    ensure_schema,
    model_table,
    model_training_table,
    recommendation_table,
    utc_datetime,
)


def api_recommendations(
    engine: Engine, site: str, source_entity_id: str, size: int = 10, model_type: str = "article"
) -> list[tuple[str, str, float]]:
    """What the recommendation API answers for an article: the article model's rows, else the
    popularity fallback (docs/contract.md, section 1). Returns (external_id, title, score)."""
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
    trained_until: datetime | None  # None: published without it (e.g. by the previous job)
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

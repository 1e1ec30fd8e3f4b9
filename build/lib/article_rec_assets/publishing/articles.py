"""The `article` table: upserts of the catalogue's articles by (site, external_id)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import (
    Engine,
    func,
    select,
)

from article_rec_assets.publishing.schema import article_table, database, utc_datetime


def upsert_articles(engine: Engine, site: str, articles: pd.DataFrame) -> dict[str, int]:
    """Insert or refresh articles (unique on site + external_id); return external_id -> id."""
    with engine.begin() as conn:
        if len(articles):
            upsert_article_rows(conn, site, articles)
        found = conn.execute(
            select(article_table.c.external_id, article_table.c.id).where(article_table.c.site == site)
        )
        return {external_id: article_id for external_id, article_id in found}


def upsert_article_rows(conn, site: str, articles: pd.DataFrame) -> None:
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
    statement = database(conn).insert(article_table)
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

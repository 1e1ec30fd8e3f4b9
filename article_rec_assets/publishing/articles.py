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
    """Insert or refresh articles (unique on site + external_id); return external_id -> id. Only
    the articles that are new or whose title, path or publish time changed are written: a tick
    publishes lists over the whole catalogue, of which a few hundred articles are new."""
    a = article_table.c
    with engine.begin() as conn:
        ids, contents = {}, {}
        for row in conn.execute(
            select(a.external_id, a.id, a.title, a.path, a.published_at).where(a.site == site)
        ):
            ids[row.external_id] = row.id
            contents[row.external_id] = (row.title, row.path, utc_datetime(row.published_at))
        changed = [
            contents.get(str(r.external_id)) != (str(r.title), str(r.path), utc_datetime(r.published_at))
            for r in articles.itertuples(index=False)
        ]
        if not any(changed):
            return ids
        upsert_article_rows(conn, site, articles[changed])
        found = conn.execute(select(a.external_id, a.id).where(a.site == site))
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

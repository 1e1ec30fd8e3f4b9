"""The catalogue's cache in the serving database: the `path` table (what each path resolved to)
and its attempts, read back with times in UTC.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import (
    Engine,
    delete,
    func,
    insert,
    select,
)

from article_rec_assets.catalogue.resolver import CatalogueCache, Resolution
from article_rec_assets.publishing.articles import upsert_article_rows
from article_rec_assets.publishing.schema import article_table, ensure_schema, path_attempt_table, path_table


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
            upsert_article_rows(conn, site, resolution.articles)

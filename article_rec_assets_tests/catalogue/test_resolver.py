"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from article_rec_assets.catalogue.resolver import (
    CatalogueCache,
)
from article_rec_assets_tests.catalogue.newsroom import CITY, city_resolve, path_rows


def test_the_cache_accepts_rows_as_the_database_returns_them() -> None:
    # Straight from SQL: object columns, a path stored twice (the table has no unique constraint;
    # the last row wins), and no `attempts` column yet.
    cache = CatalogueCache(
        paths=pd.DataFrame(
            {
                "path": ["/article/1/a/", "/article/1/a/"],
                "external_id": [None, "1"],
                "exclude_reason": ["fetch_error", None],
            }
        ),
        articles=pd.DataFrame(
            {
                "external_id": ["1"],
                "path": ["/article/1/a/"],
                "title": ["A"],
                "published_at": [datetime(2024, 1, 1, tzinfo=UTC)],
                "exclude_reason": [None],
            }
        ),
    )

    class NoSource:
        site, requests = CITY, 0

        def accepts_id(self, external_id: str) -> bool:
            return True

        def fetch(self, external_ids, modified_since):
            assert list(external_ids) == []
            return {}

        def ensure_reachable(self) -> None:
            pass

        def close(self) -> None:
            raise AssertionError("a source the caller opened is the caller's to close")

    result = city_resolve(["/article/1/a/", "/article/1/a/amp/"], cache, NoSource())
    assert path_rows(result) == [("/article/1/a/amp/", "1", None, 1)]
    assert result.articles.empty

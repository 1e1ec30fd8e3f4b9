"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from article_rec_assets.catalogue.articles import MAX_PATH_BYTES, SourceArticle, path_key, storable_text
from article_rec_assets.catalogue.resolver import (
    CatalogueCache,
    empty_cache,
)
from article_rec_assets.publishing.catalogue_cache import read_catalogue_cache, write_catalogue_resolution
from article_rec_assets.publishing.schema import connect
from article_rec_assets_tests.catalogue.newsroom import CITY, T, city_resolve, path_rows


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


class HostileSource:
    """A source whose articles carry what a careless CMS sends: a NUL and a lone surrogate in the
    title, a canonical link of 5,000 characters."""

    site, requests = CITY, 0

    def accepts_id(self, external_id: str) -> bool:
        return True

    def fetch(self, external_ids, modified_since):
        long_link = "/article/2/" + "x" * 5000 + "/"
        return {
            "1": SourceArticle("1", "Nul\x00title \ud800 end", T("2024-05-01T10:00Z"), "/article/1/a/"),
            "2": SourceArticle("2", "Long", T("2024-05-01T11:00Z"), long_link),
        }

    def ensure_reachable(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(params=["postgresql", "sqlite"])
def serving(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/s.db"
    )
    engine = connect(url)
    yield engine
    engine.dispose()


def test_paths_and_titles_the_serving_database_cannot_store_as_sent_are_stored_and_read_back(
    serving: Engine,
) -> None:
    """A NUL (PostgreSQL refuses it), a lone surrogate (not UTF-8) and a path longer than the
    `path` index takes (about 2.7 KB on PostgreSQL) once stopped `article_catalogue` for good."""
    long_path = "/article/2/" + "y" * 4000 + "/"
    other_long = "/article/2/" + "y" * 4000 + "/z/"  # the same head: must stay another row
    paths = ["/article/1/a/\x00x", "/article/1/a/", long_path, other_long, "/junk/\ud800/"]
    first = city_resolve(paths, empty_cache(), HostileSource())
    write_catalogue_resolution(serving, CITY, first)
    cache = read_catalogue_cache(serving, CITY)
    stored = set(cache.paths["path"])
    assert len(stored) == len(first.paths) == 6  # the 5 paths and the source's long canonical link
    assert "/article/1/a/\ufffdx" in stored and "/article/1/a/" in stored and "/junk/\ufffd/" in stored
    assert all(len(p.encode()) <= MAX_PATH_BYTES for p in stored)
    assert path_key(long_path) != path_key(other_long) and path_key(long_path) in stored
    titles = dict(zip(cache.articles["external_id"], cache.articles["title"], strict=True))
    assert titles == {"1": "Nul\ufffdtitle \ufffd end", "2": "Long"}
    # The next run finds every path in the cache: nothing is looked up again, nothing fails.
    again = city_resolve(paths, cache, HostileSource())
    assert again.stats.paths_settled_by_cache == 5 and again.stats.paths_looked_up == 0


def test_path_keys() -> None:
    assert path_key("/article/1/a/") == "/article/1/a/"
    assert path_key("/a/\x00b/") == "/a/\ufffdb/"
    key = path_key("/article/9/" + "é" * 2000)
    assert len(key.encode()) <= MAX_PATH_BYTES and key.startswith("/article/9/é") and "#sha256:" in key
    assert storable_text("ok \ud83d end") == "ok \ufffd end" and storable_text("📰") == "📰"

"""The catalogue asset through Dagster for a WordPress site: the window's paths are resolved
against a local server that answers like WordPress, the results land in the serving database's
`article` and `path` tables, and a second run asks nothing for the paths already cached."""

import gzip
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest
from dagster import FilesystemIOManager, instance_for_test, materialize
from sqlalchemy import select

from article_rec_assets.definitions import all_assets
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.io_managers import ParquetIOManager
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.publishing.schema import article_table, connect, path_table
from article_rec_assets.resources import CatalogueSources, EventBucket, ServingDatabase
from article_rec_assets.settings.catalogue_sources import WordPressSource
from article_rec_assets_tests.catalogue.newsroom import (  # noqa: F401 (a fixture)
    CITY_PATHS,
    FAST,
    city_newsroom,
    newsroom,
)
from article_rec_assets_tests.support import keys

SITE = "demo-city-paper"
WINDOW = datetime(2026, 3, 3, 10, tzinfo=UTC)


def write_window(data_dir: Path) -> None:
    """One page view on each of the paths, in the window's first hour folder."""
    folder = site_bucket_dir(data_dir, SITES[SITE]) / hour_folder(WINDOW)
    folder.mkdir(parents=True)
    lines = []
    for i, path in enumerate(CITY_PATHS):
        stamp = f"2026-03-03T10:{i:02d}:00.000Z"
        event = {
            "event": "page_view",
            "event_name": "page_view",
            "event_id": str(uuid.UUID(int=i + 1, version=4)),
            "domain_userid": f"reader-{i}",
            "domain_sessionid": str(uuid.UUID(int=1000 + i, version=4)),
            "page_urlhost": "democitypaper.example",
            "page_urlpath": path,
            "useragent": "Mozilla/5.0",
            "collector_tstamp": stamp,
            "dvce_created_tstamp": stamp,
        }
        lines.append(orjson.dumps(event))
    (folder / "events.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))


def test_the_catalogue_resolves_new_paths_into_the_serving_database(
    newsroom,  # noqa: F811 (the fixture imported above)
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, url = newsroom
    city_newsroom(server)
    base = SITES[SITE]
    source = WordPressSource(base_url=url, exclude_tags=(77,), exclude_categories=(9,), **FAST)
    # The window reads each path once: every path is looked up from its first read.
    articles = base.articles.model_copy(
        update={"catalogue": source, "excluded_path_prefixes": ("/about",), "min_reads_to_look_up": 1}
    )
    monkeypatch.setitem(SITES, SITE, base.model_copy(update={"articles": articles}))
    write_window(tmp_path / "data")
    resources = {
        "event_bucket": EventBucket(root_dir=str(tmp_path / "data")),
        "catalogue_sources": CatalogueSources(files_dir=str(tmp_path / "data")),
        "serving_database": ServingDatabase(url=postgres_url),
        "table_io_manager": ParquetIOManager(base_dir=str(tmp_path / "storage")),
        "io_manager": FilesystemIOManager(base_dir=str(tmp_path / "storage")),
    }
    key = window_key(WINDOW)
    selection = keys.ingest_only(SITE) | keys.selection(SITE, "article_catalogue")
    with instance_for_test() as instance:
        materialize(
            all_assets, selection=selection, partition_key=key, resources=resources, instance=instance
        )
        engine = connect(postgres_url)
        with engine.connect() as conn:
            paths = conn.execute(
                select(path_table.c.path, path_table.c.external_id, path_table.c.exclude_reason)
                .where(path_table.c.site == SITE)
                .order_by(path_table.c.path)
            ).all()
            stored = conn.execute(
                select(article_table.c.external_id, article_table.c.title)
                .where(article_table.c.site == SITE)
                .order_by(article_table.c.external_id)
            ).all()
        # The raw events' pages are normalized (query dropped, AMP unwrapped) before the lookup.
        assert [tuple(r) for r in paths] == [
            ("/about/staff/", None, "failed_site_validation"),
            ("/article/101/mayors-budget/", "101", None),
            ("/article/101/old-slug/", "101", None),
            ("/article/102/post-102/", "102", "excluded_tag"),
            ("/article/103/post-103/", "103", "no_publish_date"),
            ("/article/104/post-104/", "104", None),
            ("/article/106/post-106/", "106", "excluded_category"),
            ("/article/107/post-107/", "107", "failed_site_validation"),
            ("/article/999/gone/", "999", "not_found"),
            ("/article/abc/not-digits/", None, "no_external_id"),
            ("/news/", None, "no_external_id"),
        ]
        assert [tuple(r) for r in stored] == [
            ("101", "“Quotes” & the mayor’s 🎉 budget"),
            ("102", "Brought to you by"),
            ("103", "No date yet"),
            ("104", "Fresh news"),
            ("106", "Partner content"),
            ("107", "Moved elsewhere"),
        ]
        catalogue = pd.read_parquet(
            keys.window_table(tmp_path / "storage", SITE, "article_catalogue", WINDOW)
        )
        recommendable = sorted(catalogue.loc[catalogue["exclude_reason"].isna(), "external_id"])
        assert recommendable == ["101", "104"]

        # Again: every path is settled by the cache; only the refresh listing is asked.
        mark = len(server.seen)
        materialize(
            all_assets, selection=selection, partition_key=key, resources=resources, instance=instance
        )
        asked = server.requests_since(mark)
        assert len(asked) == 1 and asked[0].startswith("/wp-json/wp/v2/posts?modified_after=")
        engine.dispose()

"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from article_rec_assets.catalogue.articles import (
    CatalogueSourceDown,
)
from article_rec_assets.catalogue.resolver import (
    empty_cache,
)
from article_rec_assets.settings.catalogue_sources import (
    FileSource,
)
from article_rec_assets_tests.catalogue.newsroom import T, article_rows, city_resolve, path_rows

# Catalogue files


def test_a_catalogue_file_source(tmp_path: Path) -> None:
    rows = [
        {
            "external_id": "1",
            "path": "/article/1/a/",
            "title": "A &amp; B",
            "published_at": "2024-05-01T10:00:00Z",
        },
        {"external_id": "2", "path": "/article/2/b/", "title": "B", "published_at": ""},
        # A re-post under the first one's path: the earlier article keeps the path.
        {
            "external_id": "3",
            "path": "/article/1/a/",
            "title": "A again",
            "published_at": "2024-05-02T10:00:00Z",
        },
    ]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "catalogue.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_csv(tmp_path / "site" / "catalogue.csv", index=False)
    for name in ("catalogue.jsonl", "catalogue.csv"):
        result = city_resolve(
            ["/article/1/a/", "/article/3/a/amp/", "/article/4/d/"],
            empty_cache(),
            FileSource(path=f"site/{name}"),
            data_dir=tmp_path,
        )
        assert article_rows(result) == [
            ("1", "/article/1/a/", "A & B", T("2024-05-01T10:00Z"), None),
            ("2", "/article/2/b/", "B", None, "no_publish_date"),
            ("3", "/article/1/a/", "A again", T("2024-05-02T10:00Z"), "duplicate_path"),
        ], name
        assert path_rows(result) == [
            ("/article/1/a/", "1", None, 1),
            ("/article/2/b/", "2", "no_publish_date", 0),
            ("/article/3/a/amp/", "3", "duplicate_path", 1),
            ("/article/4/d/", "4", "not_found", 1),
        ], name
    with pytest.raises(CatalogueSourceDown, match="does not exist"):
        city_resolve(
            ["/article/1/a/"], empty_cache(), FileSource(path="site/missing.jsonl"), data_dir=tmp_path
        )

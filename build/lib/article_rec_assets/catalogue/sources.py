"""The article source a site's settings describe."""

from __future__ import annotations

from pathlib import Path

from article_rec_assets.catalogue.articles import ArticleSource
from article_rec_assets.catalogue.file import FileArticles
from article_rec_assets.catalogue.json_api import JsonApiArticles
from article_rec_assets.catalogue.wordpress import WordPressArticles
from article_rec_assets.settings.catalogue_sources import FileSource, JsonApiSource, WordPressSource


def open_source(
    settings: FileSource | WordPressSource | JsonApiSource, site: str, data_dir: str | Path | None = None
) -> ArticleSource:
    """The source a site's settings describe (`data_dir`: where file sources' paths start)."""
    if isinstance(settings, WordPressSource):
        return WordPressArticles(site, settings)
    if isinstance(settings, JsonApiSource):
        return JsonApiArticles(site, settings)
    if isinstance(settings, FileSource):
        return FileArticles(site, settings, data_dir)
    raise TypeError(f"unknown catalogue source settings {type(settings).__name__}")

"""The fake newsroom CMS server, for every catalogue test."""

from article_rec_assets_tests.catalogue.newsroom import newsroom  # noqa: F401 (a fixture)

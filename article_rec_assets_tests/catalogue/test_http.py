"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

import itertools
import socket

import pytest

from article_rec_assets.catalogue.articles import (
    CatalogueSourceDown,
)
from article_rec_assets.catalogue.resolver import (
    empty_cache,
)
from article_rec_assets.settings.catalogue_sources import (
    JsonApiSource,
    WordPressSource,
)
from article_rec_assets_tests.catalogue.newsroom import (
    CITY,
    FAST,
    city_resolve,
    path_rows,
    tribune_newsroom,
    tribune_resolve,
)

# Politeness


def test_the_rate_limit_holds_across_threads(newsroom) -> None:
    site, url = newsroom
    for i in range(10):
        site.articles[f"story-{i}"] = {
            "headline": f"Story {i}",
            "pub_date": "2024-04-01T10:00:00Z",
            "url": None,
        }
    source = JsonApiSource(base_url=url, **{**FAST, "requests_per_second": 20, "concurrency": 4})

    result = tribune_resolve([f"/2024/04/01/story-{i}/" for i in range(10)], empty_cache(), source)

    assert result.articles["exclude_reason"].isna().all() and len(result.articles) == 10
    times = sorted(seen.at for seen in site.seen)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 10
    assert min(gaps) > 0.03  # 0.05 s apart at the client, minus scheduling jitter
    assert times[-1] - times[0] >= 9 * 0.05 * 0.9


def test_concurrency_is_bounded(newsroom) -> None:
    site, url = newsroom
    site.delay = 0.15
    for i in range(9):
        site.articles[f"story-{i}"] = {"headline": f"Story {i}", "pub_date": "2024-04-01T10:00:00Z"}
    source = JsonApiSource(base_url=url, **{**FAST, "requests_per_second": 100, "concurrency": 3})
    tribune_resolve([f"/2024/04/01/story-{i}/" for i in range(9)], empty_cache(), source)
    assert site.max_in_flight == 3


def test_retry_after_is_honoured(newsroom) -> None:
    site, url = newsroom
    tribune_newsroom(site)
    site.throttle_once["old-story"] = "1"
    source = JsonApiSource(base_url=url, **FAST)
    result = tribune_resolve(["/2024/04/01/old-story/"], empty_cache(), source)
    assert path_rows(result) == [("/2024/04/01/old-story/", "old-story", None, 1)]
    first, second = (seen.at for seen in site.seen)
    assert second - first >= 0.95  # the server's second, not the 0.01 s backoff


# A source that is down


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_raises_naming_the_site_and_url() -> None:
    port = _closed_port()
    source = WordPressSource(base_url=f"http://127.0.0.1:{port}", **FAST)
    paths = [f"/article/{i}/post-{i}/" for i in range(1, 20)]
    with pytest.raises(CatalogueSourceDown, match=rf"{CITY}.*127\.0\.0\.1:{port}/wp-json") as caught:
        city_resolve(paths, empty_cache(), source)
    assert caught.value.site == CITY and f":{port}/" in caught.value.url


def test_an_api_answering_503_to_everything_raises(newsroom) -> None:
    site, url = newsroom
    site.everything = 503
    source = WordPressSource(base_url=url, **FAST)
    with pytest.raises(CatalogueSourceDown, match=r"HTTP 503.*in a row"):
        city_resolve([f"/article/{i}/post-{i}/" for i in range(1, 20)], empty_cache(), source)
    # Even a single request, if nothing at all was answered, means the site is down.
    with pytest.raises(CatalogueSourceDown, match="no request was answered: HTTP 503"):
        tribune_resolve(["/2024/05/10/budget-deal/"], empty_cache(), JsonApiSource(base_url=url, **FAST))

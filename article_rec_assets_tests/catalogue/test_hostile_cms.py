"""A broken or hostile CMS cannot take a window's catalogue down: each bad answer, served by a
local server beside a good article, becomes that article's exclude reason or `fetch_error` (or
waits for a later run); the good article still resolves, and what is stored reads back from the
serving database, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from article_rec_assets.catalogue.articles import (
    FETCH_ERROR,
    IMPLAUSIBLE_PUBLISH_DATE,
    MAX_TITLE_CHARS,
    NO_PUBLISH_DATE,
)
from article_rec_assets.catalogue.resolver import empty_cache, resolve_paths
from article_rec_assets.publishing.catalogue_cache import read_catalogue_cache, write_catalogue_resolution
from article_rec_assets.publishing.schema import connect
from article_rec_assets.settings.catalogue_sources import JsonApiSource, WordPressSource
from article_rec_assets_tests.catalogue.hostile_cms import Handler, hostile_cms

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
SITE = "hostile-news"
PATTERN = r"^/news/(?P<external_id>[a-z0-9-]+)/?$"
WP_PATTERN = r"^/article/(?P<external_id>\d+)/[a-z0-9-]+/?$"
# Small bounds so that each misbehaviour shows within a second; the defaults are larger.
BOUNDS = {
    "requests_per_second": 100,
    "concurrency": 4,
    "timeout_seconds": 0.5,
    "max_retries": 1,
    "backoff_seconds": 0.01,
    "max_body_bytes": 200_000,
    "request_deadline_seconds": 1.0,
    "max_redirects": 3,
    "outage_after_failures": 50,
}


@pytest.fixture
def cms() -> Iterator[str]:
    with hostile_cms() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 's.db'}"
    )
    engine = connect(url)
    yield engine
    engine.dispose()


HOSTILE = {
    # answer: the exclude reason its path gets
    "endless": FETCH_ERROR,
    "huge": FETCH_ERROR,
    "unannounced": FETCH_ERROR,
    "trickle": FETCH_ERROR,
    "trickle-headers": FETCH_ERROR,
    "off-origin": FETCH_ERROR,
    "loop": FETCH_ERROR,
    "year-9999": IMPLAUSIBLE_PUBLISH_DATE,
    "year-0001": IMPLAUSIBLE_PUBLISH_DATE,
    "now": NO_PUBLISH_DATE,
    "link-number": FETCH_ERROR,
    "link-list": FETCH_ERROR,
    "title-object": FETCH_ERROR,
    "superscript-retry": FETCH_ERROR,
    "deep": FETCH_ERROR,
}
RESOLVED = ["good", "moved", "epoch-ms", "epoch-1e12", "encoded-html", "brackets", "long-title"]


def test_every_bad_answer_stays_with_its_article(cms: str, engine: Engine) -> None:
    paths = {f"/news/{key}/": 3 for key in [*HOSTILE, *RESOLVED]}
    source = JsonApiSource(base_url=cms, **BOUNDS)
    started = time.monotonic()
    resolution = resolve_paths(
        paths, empty_cache(), source, site=SITE, path_pattern=PATTERN, now=NOW, min_reads=2
    )
    seconds = time.monotonic() - started
    write_catalogue_resolution(engine, SITE, resolution)
    stored = read_catalogue_cache(engine, SITE)

    reasons = dict(zip(stored.paths["path"], stored.paths["exclude_reason"], strict=True))
    assert {key: reasons[f"/news/{key}/"] for key in HOSTILE} == HOSTILE
    articles = stored.articles.set_index("external_id")
    assert {key: reasons[f"/news/{key}/"] for key in RESOLVED if not pd.isna(reasons[f"/news/{key}/"])} == {}
    assert articles.loc["good", "title"] == "Good article good"
    # The other host is never asked, and its answer never stored as ours.
    assert "/api/v2/articles/stolen" not in Handler.requests
    assert "Not ours" not in set(articles["title"])
    # Dates: milliseconds read as such; an implausible one stored as no time at all.
    assert articles.loc["epoch-ms", "published_at"].isoformat() == "2024-05-10T12:00:00+00:00"
    assert articles.loc["epoch-1e12", "published_at"].year == 2001
    assert pd.isna(articles.loc["year-9999", "published_at"])
    # Titles: bounded, entities decoded before tags are dropped, brackets cleaned in linear time.
    assert articles.loc["encoded-html", "title"] == "alert(1)Budget <3"
    assert articles.loc["brackets", "title"] == "<" * MAX_TITLE_CHARS
    assert len(articles.loc["long-title", "title"]) <= MAX_TITLE_CHARS
    # A redirect inside the origin is followed; a loop stops after max_redirects.
    ids = dict(zip(stored.paths["path"], stored.paths["external_id"], strict=True))
    assert ids["/news/moved/"] == "moved-here"
    assert articles.loc["moved-here", "title"] == "Good article moved-here"
    assert sum(p.startswith("/api/v2/articles/loop") for p in Handler.requests) == (
        BOUNDS["max_redirects"] + 1
    )
    # Every request the CMS received went through the rate limiter and is counted, redirects too.
    assert resolution.stats.requests == len(Handler.requests)
    # Bounded in time: the trickling answers are cut at their deadline (1 s a try), not served out.
    assert seconds < 20, seconds


def test_wordpress_posts_of_the_wrong_shape_are_their_own_fetch_errors(newsroom, engine: Engine) -> None:
    server, url = newsroom
    server.wp_post(1, "A good post", "2024-05-09T08:00:00", "2024-05-09T08:00:00")
    server.wp_post(2, "Link is a number", "2024-05-09T08:00:00", "2024-05-09T08:00:00", link=2)
    server.wp_post(3, "Link is a list", "2024-05-09T08:00:00", "2024-05-09T08:00:00", link=["/a", "/b"])
    server.wp_post(4, "Sponsored, tags as text", "2024-05-09T08:00:00", "2024-05-09T08:00:00", tags="7")
    server.wp_post(5, "Year 9999", "9999-12-31T00:00:00", "2024-05-09T08:00:00")
    server.wp_post(6, "Sponsored", "2024-05-09T08:00:00", "2024-05-09T08:00:00", tags=[7])
    source = WordPressSource(base_url=url, exclude_tags=(7,), refresh_by_modified=False, **BOUNDS)
    paths = [f"/article/{i}/post-{i}/" for i in range(1, 7)]
    resolution = resolve_paths(paths, empty_cache(), source, site=SITE, path_pattern=WP_PATTERN, now=NOW)
    write_catalogue_resolution(engine, SITE, resolution)
    stored = read_catalogue_cache(engine, SITE)
    reasons = dict(zip(stored.paths["path"], stored.paths["exclude_reason"], strict=True))
    assert [reasons[p] for p in paths] == [
        None,
        FETCH_ERROR,
        FETCH_ERROR,
        FETCH_ERROR,  # never recommended on the chance it is sponsored; asked again later
        IMPLAUSIBLE_PUBLISH_DATE,
        "excluded_tag",
    ]


def test_a_flood_of_made_up_paths_waits_uncached(cms: str, engine: Engine) -> None:
    """Paths read once are not looked up at all; of those read more, the most read go first, up
    to the run's cap; the rest are not cached, so a later run looks them up."""
    flood = {f"/news/made-up-{i}/": 1 for i in range(5000)}
    twice = {f"/news/twice-{i}/": 2 for i in range(50)}
    paths = {**flood, **twice, "/news/good/": 40}
    source = JsonApiSource(base_url=cms, **BOUNDS)
    resolution = resolve_paths(
        paths, empty_cache(), source, site=SITE, path_pattern=PATTERN, now=NOW, min_reads=2, max_new_paths=10
    )
    assert resolution.stats.paths_looked_up == 10 and resolution.stats.requests == 10
    assert resolution.stats.paths_waiting == len(paths) - 10
    assert "/news/good/" in set(resolution.paths["path"])
    assert not any("made-up" in p for p in Handler.requests)
    write_catalogue_resolution(engine, SITE, resolution)
    assert len(read_catalogue_cache(engine, SITE).paths) == 10


def test_a_run_stops_asking_when_its_lookup_budget_is_spent(cms: str, engine: Engine) -> None:
    source = JsonApiSource(base_url=cms, **{**BOUNDS, "lookup_budget_seconds": 0.6, "concurrency": 1})
    paths = {"/news/good/": 5, **{f"/news/slow-{i}/": 3 for i in range(6)}}
    first = resolve_paths(paths, empty_cache(), source, site=SITE, path_pattern=PATTERN, now=NOW)
    write_catalogue_resolution(engine, SITE, first)
    assert first.stats.paths_waiting > 0
    cached = read_catalogue_cache(engine, SITE)
    assert "/news/good/" in set(cached.paths["path"])  # the most read was asked first
    assert len(cached.paths) == len(paths) - first.stats.paths_waiting
    # The next run asks for what waited.
    second = resolve_paths(
        paths, cached, JsonApiSource(base_url=cms, **BOUNDS), site=SITE, path_pattern=PATTERN, now=NOW
    )
    assert second.stats.paths_looked_up == first.stats.paths_waiting

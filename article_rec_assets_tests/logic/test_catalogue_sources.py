"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

import itertools
import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from article_rec_assets.logic import ingestion
from article_rec_assets.logic.catalogue_sources import (
    AMP_CACHE_PREFIX,
    AMP_SUFFIX,
    ARTICLE_DTYPES,
    PATH_DTYPES,
    CatalogueCache,
    CatalogueSource,
    CatalogueSourceDown,
    FileSource,
    JsonApiSource,
    Resolution,
    WordPressSource,
    clean_title,
    empty_cache,
    merge_resolution,
    normalize_path,
    parse_time,
    resolve_paths,
)

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
CITY = "demo-city-paper"
CITY_PATTERN = r"^/article/(?P<external_id>\d+)/[a-z0-9-]+/?$"
TRIBUNE = "demo-tribune"
TRIBUNE_PATTERN = r"^/\d{4}/\d{2}/\d{2}/(?P<external_id>[a-z0-9-]+)/?$"
TRIBUNE_PREFIXES = ("/about", "/districts", "/newsletters")
USER_AGENT = "article-rec-assets-tests/1.0 (+mailto:data@example.org)"
# Fast enough for tests: a high rate, tiny backoff, one retry, short timeouts.
FAST = {
    "requests_per_second": 50,
    "backoff_seconds": 0.01,
    "max_retries": 1,
    "timeout_seconds": 0.3,
    "user_agent": USER_AGENT,
}


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@dataclass(frozen=True)
class Seen:
    at: float
    path: str
    query: dict[str, str]
    user_agent: str


class FakeNewsroom:
    """The newsroom's APIs, with trouble on demand (keys: WordPress post ids or article ids)."""

    def __init__(self) -> None:
        self.posts: dict[int, dict] = {}
        self.articles: dict[str, dict] = {}
        self.fail_once: set[str] = set()  # one 500, then answers
        self.always_fail: set[str] = set()  # 500 every time
        self.slow: set[str] = set()  # answers after SLOW_SECONDS (beyond the client's timeout)
        self.malformed: set[str] = set()  # 200 with a body that is not JSON
        self.throttle_once: dict[str, str] = {}  # one 429 with this Retry-After
        self.everything: int | None = None  # every request answers with this status (down)
        self.delay = 0.0  # every answer takes this long
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    SLOW_SECONDS = 1.0

    def wp_post(self, post_id: int, title: str, date_gmt: str | None, modified_gmt: str, **extra) -> None:
        self.posts[post_id] = {
            "id": post_id,
            "date_gmt": date_gmt,
            "modified_gmt": modified_gmt,
            "link": extra.pop("link", f"http://democitypaper.example/article/{post_id}/post-{post_id}/"),
            "status": extra.pop("status", "publish"),
            "title": {"rendered": title},
            "categories": extra.pop("categories", [1]),
            "tags": extra.pop("tags", []),
            "content": {"rendered": "<p>Not asked for.</p>"},
        }

    # Serving

    def handle(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        if self.everything is not None:
            return self.everything, b'{"message": "down for maintenance"}', {}
        if self.delay:
            time.sleep(self.delay)
        if path == "/wp-json/wp/v2/posts":
            if "include" in query:
                return self._troubled(query["include"].split(","), lambda: self._wp_include(query))
            return self._wp_listing(query)
        if path.startswith("/wp-json/wp/v2/posts/"):
            key = path.rsplit("/", 1)[1]
            return self._troubled([key], lambda: self._wp_single(key))
        if path.startswith("/api/v2/articles/"):
            key = path.rsplit("/", 1)[1]
            return self._troubled([key], lambda: self._article(key))
        return 404, b'{"detail": "Not found."}', {}

    def _troubled(self, keys: list[str], answer) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            for key in keys:
                if key in self.throttle_once:
                    return 429, b'{"detail": "slow down"}', {"Retry-After": self.throttle_once.pop(key)}
                if key in self.fail_once:
                    self.fail_once.discard(key)
                    return 500, b"<html>Internal Server Error</html>", {}
                if key in self.always_fail:
                    return 500, b"<html>Fatal error: Uncaught Error</html>", {}
        if any(key in self.slow for key in keys):
            time.sleep(self.SLOW_SECONDS)
        if any(key in self.malformed for key in keys):
            return 200, b'[{"id": 1, "title": {"rendered": "cut off', {}
        return answer()

    def _wp_include(self, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        posts = [self.posts[int(i)] for i in query["include"].split(",") if int(i) in self.posts]
        return self._page(posts, query)

    def _wp_listing(self, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        after = query.get("modified_after", "0000")
        posts = sorted(
            (p for p in self.posts.values() if p["modified_gmt"] > after),
            key=lambda p: p["modified_gmt"],
            reverse=True,
        )
        return self._page(posts, query)

    def _page(self, posts: list[dict], query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        per_page, page = int(query.get("per_page", "10")), int(query.get("page", "1"))
        pages = math.ceil(len(posts) / per_page)
        if page > max(pages, 1):
            return 400, b'{"code": "rest_post_invalid_page_number"}', {}
        chunk = posts[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(pages)}
        return 200, json.dumps(chunk).encode(), headers

    def _wp_single(self, key: str) -> tuple[int, bytes, dict[str, str]]:
        if key.isdigit() and int(key) in self.posts:
            return 200, json.dumps(self.posts[int(key)]).encode(), {}
        body = {"code": "rest_post_invalid_id", "message": "Invalid post ID.", "data": {"status": 404}}
        return 404, json.dumps(body).encode(), {}

    def _article(self, key: str) -> tuple[int, bytes, dict[str, str]]:
        if key in self.articles:
            return 200, json.dumps(self.articles[key]).encode(), {}
        return 404, b'{"detail": "Not found."}', {}

    # What the tests look at

    def record(self, path: str, query: dict[str, str], user_agent: str) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), path, query, user_agent))

    @contextmanager
    def serving(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def requests_since(self, mark: int) -> list[str]:
        """The requests after the first `mark`, as `path?include=..` (or `path` for the rest)."""
        out = []
        for seen in self.seen[mark:]:
            if "include" in seen.query:
                out.append(f"{seen.path}?include={seen.query['include']}")
            elif "modified_after" in seen.query:
                out.append(
                    f"{seen.path}?modified_after={seen.query['modified_after']}&page={seen.query['page']}"
                )
            else:
                out.append(seen.path)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        newsroom = self.server.newsroom
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        newsroom.record(url.path, query, self.headers.get("User-Agent", ""))
        with newsroom.serving():
            status, body, headers = newsroom.handle(url.path, query)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, newsroom: FakeNewsroom) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.newsroom = newsroom

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out closed its socket before a slow answer


@pytest.fixture
def newsroom() -> Iterator[tuple[FakeNewsroom, str]]:
    site = FakeNewsroom()
    server = _Server(site)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def article_rows(resolution: Resolution) -> list[tuple]:
    return [
        (
            r.external_id,
            r.path,
            r.title,
            None if pd.isna(r.published_at) else r.published_at,
            _none(r.exclude_reason),
        )
        for r in resolution.articles.itertuples(index=False)
    ]


def path_rows(resolution: Resolution) -> list[tuple]:
    return [
        (r.path, _none(r.external_id), _none(r.exclude_reason), r.attempts)
        for r in resolution.paths.itertuples(index=False)
    ]


def _none(value):
    return None if pd.isna(value) else value


def city_resolve(paths, cache, source, now=NOW, **kwargs) -> Resolution:
    return resolve_paths(paths, cache, source, site=CITY, path_pattern=CITY_PATTERN, now=now, **kwargs)


def tribune_resolve(paths, cache, source, now=NOW, **kwargs) -> Resolution:
    return resolve_paths(
        paths,
        cache,
        source,
        site=TRIBUNE,
        path_pattern=TRIBUNE_PATTERN,
        now=now,
        excluded_path_prefixes=TRIBUNE_PREFIXES,
        **kwargs,
    )


# Settings


def test_source_settings_are_a_union_on_source_defaulting_to_file() -> None:
    adapter = TypeAdapter(CatalogueSource)
    assert adapter.validate_python({"path": "demo-city-paper/catalogue.jsonl"}) == FileSource(
        path="demo-city-paper/catalogue.jsonl"
    )
    wordpress = adapter.validate_python(
        {"source": "wordpress", "base_url": "https://democitypaper.example/", "exclude_tags": [77]}
    )
    assert isinstance(wordpress, WordPressSource)
    assert wordpress.base_url == "https://democitypaper.example"
    assert wordpress.exclude_tags == (77,)
    api = adapter.validate_python({"source": "json_api", "base_url": "https://api.demotribune.example"})
    assert isinstance(api, JsonApiSource) and api.article_path == "/api/v2/articles/{id}"

    class Holder(BaseModel):
        catalogue: CatalogueSource

    assert isinstance(
        Holder.model_validate({"catalogue": {"source": "file", "path": "x.csv"}}).catalogue, FileSource
    )
    with pytest.raises(ValidationError):
        adapter.validate_python({"source": "wordpress", "base_url": "https://x.example", "exclude_tag": [1]})
    with pytest.raises(ValidationError):
        adapter.validate_python({"source": "rss", "base_url": "https://x.example"})
    with pytest.raises(ValidationError, match="http"):
        WordPressSource(base_url="democitypaper.example")
    with pytest.raises(ValidationError, match=r"\{id\}"):
        JsonApiSource(base_url="https://x.example", article_path="/api/v2/articles/")
    with pytest.raises(ValidationError):
        WordPressSource(base_url="https://x.example", requests_per_second=0)
    with pytest.raises(ValidationError, match="frozen"):
        wordpress.concurrency = 8


def test_sites_can_import_the_settings_without_a_cycle() -> None:
    code = (
        "import sys, article_rec_assets.logic.catalogue_sources;"
        "assert 'article_rec_assets.sites' not in sys.modules, 'imports sites'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert AMP_CACHE_PREFIX.pattern == ingestion.AMP_CACHE_PREFIX.pattern
    assert AMP_SUFFIX.pattern == ingestion.AMP_SUFFIX.pattern


def test_titles_paths_and_times_are_cleaned() -> None:
    raw = "&#8220;Don&#8217;t&#8221; &amp; <em>won&#039;t</em>: AT&#038;T&nbsp;🎉 &lt;3 "
    assert clean_title(raw) == "“Don’t” & won't: AT&T 🎉 <3"
    assert clean_title(None) == ""
    assert normalize_path("/article/1/a-b/amp/") == "/article/1/a-b/"
    assert normalize_path("/c/s/democitypaper.example/article/1/a-b/?amp_js_v=0.1#x") == "/article/1/a-b/"
    assert normalize_path("https://www.demotribune.example/2024/05/10/x/?utm_source=y") == "/2024/05/10/x/"
    assert parse_time("2024-05-10T08:00:00") == T("2024-05-10T08:00:00Z")
    assert parse_time("2024-05-10T06:30:00-05:00") == T("2024-05-10T11:30:00Z")
    assert parse_time(1715328000) == T("2024-05-10T08:00:00Z")
    assert parse_time(None) is None and parse_time("") is None and parse_time("0000-00-00 00:00:00") is None


# WordPress


def _city_newsroom(site: FakeNewsroom) -> None:
    site.wp_post(
        101,
        "&#8220;Quotes&#8221; &amp; the mayor&#8217;s 🎉 <em>budget</em>",
        "2024-05-01T09:30:00",
        "2024-05-02T10:00:00",
        link="http://democitypaper.example/article/101/mayors-budget/",
    )
    site.wp_post(102, "Brought to you by", "2024-05-03T10:00:00", "2024-05-03T10:00:00", tags=[5, 77])
    site.wp_post(103, "No date yet", None, "2024-05-04T10:00:00")
    site.wp_post(104, "Fresh news", "2024-05-10T08:00:00", "2024-05-10T08:05:00")
    site.wp_post(105, "Nobody read it yet", "2024-05-09T20:00:00", "2024-05-10T09:00:00")
    site.wp_post(106, "Partner content", "2024-05-05T10:00:00", "2024-05-05T10:00:00", categories=[9])
    site.wp_post(
        107, "Moved elsewhere", "2024-05-05T11:00:00", "2024-05-05T11:00:00", link="http://x.example/?p=107"
    )
    site.wp_post(108, "An old one", "2023-01-01T10:00:00", "2023-01-02T10:00:00")


CITY_PATHS = [
    "/article/101/mayors-budget/",
    "/article/101/mayors-budget/amp/",
    "/article/101/mayors-budget/?utm_source=newsletter",
    "/v/s/democitypaper.example/article/101/mayors-budget/",
    "/article/101/old-slug/",
    "/article/102/post-102/",
    "/article/103/post-103/",
    "/article/104/post-104/",
    "/article/106/post-106/",
    "/article/107/post-107/",
    "/article/999/gone/",
    "/article/abc/not-digits/",
    "/about/staff/",
    "/news/",
]


def test_wordpress_resolves_new_paths_into_exact_rows(newsroom) -> None:
    site, url = newsroom
    _city_newsroom(site)
    source = WordPressSource(base_url=url, exclude_tags=(77,), exclude_categories=(9,), **FAST)

    result = city_resolve(CITY_PATHS, empty_cache(), source, excluded_path_prefixes=("/about",))

    assert article_rows(result) == [
        (
            "101",
            "/article/101/mayors-budget/",
            "“Quotes” & the mayor’s 🎉 budget",
            T("2024-05-01T09:30Z"),
            None,
        ),
        ("102", "/article/102/post-102/", "Brought to you by", T("2024-05-03T10:00Z"), "excluded_tag"),
        ("103", "/article/103/post-103/", "No date yet", None, "no_publish_date"),
        ("104", "/article/104/post-104/", "Fresh news", T("2024-05-10T08:00Z"), None),
        # Not read by anyone yet, but modified lately: listed, and its path cached for later.
        ("105", "/article/105/post-105/", "Nobody read it yet", T("2024-05-09T20:00Z"), None),
        ("106", "/article/106/post-106/", "Partner content", T("2024-05-05T10:00Z"), "excluded_category"),
        # Its link is no article path of the site: it keeps the path it was read under.
        (
            "107",
            "/article/107/post-107/",
            "Moved elsewhere",
            T("2024-05-05T11:00Z"),
            "failed_site_validation",
        ),
    ]
    assert path_rows(result) == [
        ("/about/staff/", None, "failed_site_validation", 1),
        ("/article/101/mayors-budget/", "101", None, 1),
        ("/article/101/mayors-budget/?utm_source=newsletter", "101", None, 1),
        ("/article/101/mayors-budget/amp/", "101", None, 1),
        ("/article/101/old-slug/", "101", None, 1),
        ("/article/102/post-102/", "102", "excluded_tag", 1),
        ("/article/103/post-103/", "103", "no_publish_date", 1),
        ("/article/104/post-104/", "104", None, 1),
        ("/article/105/post-105/", "105", None, 0),
        ("/article/106/post-106/", "106", "excluded_category", 1),
        ("/article/107/post-107/", "107", "failed_site_validation", 1),
        ("/article/999/gone/", "999", "not_found", 1),
        ("/article/abc/not-digits/", None, "no_external_id", 1),
        ("/news/", None, "no_external_id", 1),
        ("/v/s/democitypaper.example/article/101/mayors-budget/", "101", None, 1),
    ]
    assert result.articles.dtypes.astype(str).to_dict() == ARTICLE_DTYPES
    assert result.paths.dtypes.astype(str).to_dict() == PATH_DTYPES
    # One listing of the posts modified lately (a day, plus a margin for the site's time zone),
    # then one request for every other id at once; 101 is fetched once for its five aliases.
    assert site.requests_since(0) == [
        "/wp-json/wp/v2/posts?modified_after=2024-05-08T22:00:00&page=1",
        "/wp-json/wp/v2/posts?include=101,102,103,106,107,999",
    ]
    assert {seen.user_agent for seen in site.seen} == {USER_AGENT}
    assert result.stats.paths_looked_up == len(CITY_PATHS) and result.stats.requests == 2


def test_a_second_run_asks_only_for_what_the_cache_does_not_settle(newsroom) -> None:
    site, url = newsroom
    _city_newsroom(site)
    source = WordPressSource(base_url=url, exclude_tags=(77,), exclude_categories=(9,), **FAST)
    first = city_resolve(CITY_PATHS, empty_cache(), source, excluded_path_prefixes=("/about",))
    cache = merge_resolution(empty_cache(), first)
    mark = len(site.seen)

    later = NOW + timedelta(hours=2)
    second = city_resolve([*CITY_PATHS, "/article/108/an-old-one/"], cache, source, now=later)

    # The listing (refreshing 104 and 105, published within the day) and the one new path's post.
    assert site.requests_since(mark) == [
        "/wp-json/wp/v2/posts?modified_after=2024-05-09T00:00:00&page=1",
        "/wp-json/wp/v2/posts/108",
    ]
    assert [row[0] for row in article_rows(second)] == ["104", "105", "108"]
    assert path_rows(second) == [
        ("/article/108/an-old-one/", "108", None, 1),
        ("/article/108/post-108/", "108", None, 0),
    ]
    assert second.stats.paths_settled_by_cache == len(CITY_PATHS)


def test_the_modified_listing_follows_the_total_pages_header(newsroom) -> None:
    site, url = newsroom
    for post_id in range(301, 306):  # five posts modified within the day
        hour = post_id - 300
        site.wp_post(post_id, f"Post {post_id}", f"2024-05-10T0{hour}:00:00", f"2024-05-10T1{hour}:00:00")
    source = WordPressSource(base_url=url, listing_page_size=2, **FAST)
    result = city_resolve(["/article/302/post-302/"], empty_cache(), source)
    assert [row[0] for row in article_rows(result)] == ["301", "302", "303", "304", "305"]
    assert sorted(site.requests_since(0)) == [
        f"/wp-json/wp/v2/posts?modified_after=2024-05-08T22:00:00&page={page}" for page in (1, 2, 3)
    ]
    assert site.seen[0].query["per_page"] == "2" and site.seen[0].query["orderby"] == "modified"
    capped = WordPressSource(base_url=url, listing_page_size=2, max_listing_pages=2, **FAST)
    mark = len(site.seen)
    result = city_resolve(["/article/305/post-305/"], empty_cache(), capped)
    # Two pages of the newest first (305 is on the first); 301 waits for a later run.
    assert [row[0] for row in article_rows(result)] == ["302", "303", "304", "305"]
    assert len(site.requests_since(mark)) == 2


def test_one_bad_post_never_fails_the_batch(newsroom) -> None:
    site, url = newsroom
    for post_id in range(201, 206):
        site.wp_post(post_id, f"Post {post_id}", "2024-05-01T10:00:00", "2024-05-01T10:00:00")
    site.fail_once.add("202")  # a 500, then the answer
    site.slow.add("203")  # beyond the client's timeout, every time
    site.malformed.add("204")  # a PHP warning in the JSON
    source = WordPressSource(base_url=url, refresh_by_modified=False, **FAST)
    paths = [f"/article/{i}/post-{i}/" for i in (201, 202, 203, 204, 205, 299)]

    started = time.monotonic()
    result = city_resolve(paths, empty_cache(), source)

    assert time.monotonic() - started < 3
    assert article_rows(result) == [
        (str(i), f"/article/{i}/post-{i}/", f"Post {i}", T("2024-05-01T10:00Z"), None)
        for i in (201, 202, 205)
    ]
    assert path_rows(result) == [
        ("/article/201/post-201/", "201", None, 1),
        ("/article/202/post-202/", "202", None, 1),
        ("/article/203/post-203/", "203", "fetch_error", 1),
        ("/article/204/post-204/", "204", "fetch_error", 1),
        ("/article/205/post-205/", "205", None, 1),
        ("/article/299/post-299/", "299", "not_found", 1),
    ]
    batch = "/wp-json/wp/v2/posts?include=201,202,203,204,205,299"
    # The batch: a 500, then a timeout; so each post on its own (a slow one twice), 299 a 404.
    assert site.requests_since(0) == [
        batch,
        batch,
        *[f"/wp-json/wp/v2/posts/{i}" for i in (201, 202, 203, 203, 204, 205, 299)],
    ]


# JSON articles API


def _tribune_newsroom(site: FakeNewsroom) -> None:
    site.articles["budget-deal"] = {
        "id": 9001,
        "headline": "Lawmakers&#8217; &quot;budget&quot; deal &amp; more 🤠",
        "pub_date": "2024-05-10T06:30:00-05:00",
        "url": "https://www.demotribune.example/2024/05/10/budget-deal/",
    }
    site.articles["old-story"] = {
        "id": 8000,
        "headline": "An old story",
        "pub_date": "2024-04-01T10:00:00Z",
        "url": "https://www.demotribune.example/2024/04/01/old-story/",
    }
    site.articles["no-date"] = {"id": 8001, "headline": "Undated", "pub_date": None, "url": None}


TRIBUNE_PATHS = [
    "/2024/05/10/budget-deal/",
    "/2024/05/10/budget-deal/amp/",
    "/2024/04/01/old-story/",
    "/2024/05/01/no-date/",
    "/2024/05/02/ghost/",
    "/districts/austin-isd/",
    "/newsletters/",
]


def test_json_api_rows_refreshes_and_cache(newsroom) -> None:
    site, url = newsroom
    _tribune_newsroom(site)
    site.fail_once.add("old-story")  # a 500, then the answer
    source = JsonApiSource(base_url=url, **FAST)

    first = tribune_resolve(TRIBUNE_PATHS, empty_cache(), source)

    assert article_rows(first) == [
        (
            "budget-deal",
            "/2024/05/10/budget-deal/",
            'Lawmakers’ "budget" deal & more 🤠',
            T("2024-05-10T11:30Z"),
            None,
        ),
        ("no-date", "/2024/05/01/no-date/", "Undated", None, "no_publish_date"),
        ("old-story", "/2024/04/01/old-story/", "An old story", T("2024-04-01T10:00Z"), None),
    ]
    assert path_rows(first) == [
        ("/2024/04/01/old-story/", "old-story", None, 1),
        ("/2024/05/01/no-date/", "no-date", "no_publish_date", 1),
        ("/2024/05/02/ghost/", "ghost", "not_found", 1),
        ("/2024/05/10/budget-deal/", "budget-deal", None, 1),
        ("/2024/05/10/budget-deal/amp/", "budget-deal", None, 1),
        ("/districts/austin-isd/", None, "failed_site_validation", 1),
        ("/newsletters/", None, "failed_site_validation", 1),
    ]
    assert sorted(site.requests_since(0)) == [
        "/api/v2/articles/budget-deal",
        "/api/v2/articles/ghost",
        "/api/v2/articles/no-date",
        "/api/v2/articles/old-story",
        "/api/v2/articles/old-story",
    ]

    # The newsroom fixes two headlines; only the article published within the day is fetched again.
    site.articles["budget-deal"]["headline"] = "Lawmakers reach a budget deal"
    site.articles["old-story"]["headline"] = "An old story, corrected"
    cache = merge_resolution(empty_cache(), first)
    mark = len(site.seen)
    second = tribune_resolve(
        [*TRIBUNE_PATHS, "/2024/05/10/budget-deal/?utm_source=x"], cache, source, NOW + timedelta(hours=1)
    )
    assert site.requests_since(mark) == ["/api/v2/articles/budget-deal"]
    assert article_rows(second) == [
        (
            "budget-deal",
            "/2024/05/10/budget-deal/",
            "Lawmakers reach a budget deal",
            T("2024-05-10T11:30Z"),
            None,
        )
    ]
    assert path_rows(second) == [("/2024/05/10/budget-deal/?utm_source=x", "budget-deal", None, 1)]

    # Two days on, nothing is new and nothing is recent: no request at all.
    cache = merge_resolution(cache, second)
    mark = len(site.seen)
    third = tribune_resolve(TRIBUNE_PATHS, cache, source, NOW + timedelta(days=2))
    assert site.requests_since(mark) == []
    assert third.articles.empty and third.paths.empty


def test_redirected_slugs_are_aliases_and_a_repost_is_a_duplicate_path(newsroom) -> None:
    site, url = newsroom
    _tribune_newsroom(site)
    # The API answers an old slug with the article under its new address: a redirect.
    site.articles["budget-talks"] = dict(site.articles["budget-deal"])
    # A different story published under another story's address: a re-post.
    site.articles["budget-repost"] = {**site.articles["budget-deal"], "headline": "Budget deal (repost)"}
    source = JsonApiSource(base_url=url, **FAST)
    paths = ["/2024/05/09/budget-talks/", "/2024/05/10/budget-repost/"]
    # Without the article itself among the answers, the alias still resolves to it.
    alone = tribune_resolve(paths[:1], empty_cache(), source)
    assert [r[:2] for r in article_rows(alone)] == [("budget-deal", "/2024/05/10/budget-deal/")]
    assert path_rows(alone) == [
        ("/2024/05/09/budget-talks/", "budget-deal", None, 1),
        ("/2024/05/10/budget-deal/", "budget-deal", None, 0),
    ]
    both = tribune_resolve([*paths, "/2024/05/10/budget-deal/"], empty_cache(), source)
    assert [(r[0], r[1], r[4]) for r in article_rows(both)] == [
        ("budget-deal", "/2024/05/10/budget-deal/", None),
        ("budget-repost", "/2024/05/10/budget-deal/", "duplicate_path"),
    ]
    assert path_rows(both) == [
        ("/2024/05/09/budget-talks/", "budget-deal", None, 1),
        ("/2024/05/10/budget-deal/", "budget-deal", None, 1),
        ("/2024/05/10/budget-repost/", "budget-repost", "duplicate_path", 1),
    ]


def test_a_refreshed_article_that_disappears_is_excluded(newsroom) -> None:
    site, url = newsroom
    _tribune_newsroom(site)
    source = JsonApiSource(base_url=url, **FAST)
    cache = merge_resolution(
        empty_cache(), tribune_resolve(["/2024/05/10/budget-deal/"], empty_cache(), source)
    )
    del site.articles["budget-deal"]  # unpublished within the day
    result = tribune_resolve(["/2024/05/10/budget-deal/"], cache, source, NOW + timedelta(hours=3))
    assert [(r[0], r[4]) for r in article_rows(result)] == [("budget-deal", "not_found")]
    assert path_rows(result) == [("/2024/05/10/budget-deal/", "budget-deal", "not_found", 1)]


def test_fetch_error_is_retried_on_later_runs_up_to_the_limit(newsroom) -> None:
    site, url = newsroom
    _tribune_newsroom(site)
    site.always_fail.add("broken")  # this one article crashes the API (a 500, not a site outage)
    source = JsonApiSource(base_url=url, **FAST)
    paths = ["/2024/04/01/old-story/", "/2024/05/03/broken/"]
    cache = empty_cache()
    counts = []
    for run in range(4):
        mark = len(site.seen)
        result = tribune_resolve(paths, cache, source, NOW + timedelta(hours=2 * run), max_fetch_attempts=3)
        cache = merge_resolution(cache, result)
        counts.append(site.requests_since(mark).count("/api/v2/articles/broken"))
        if run == 0:
            assert path_rows(result) == [
                ("/2024/04/01/old-story/", "old-story", None, 1),
                ("/2024/05/03/broken/", "broken", "fetch_error", 1),
            ]
        elif run < 3:  # the run makes no other request, and still does not call the site down
            assert site.requests_since(mark) == ["/api/v2/articles/broken"] * 2
            assert path_rows(result) == [("/2024/05/03/broken/", "broken", "fetch_error", run + 1)]
        else:
            assert path_rows(result) == []
    assert counts == [2, 2, 2, 0]  # one retry per run, three runs, then given up
    assert cache.paths.set_index("path").loc["/2024/05/03/broken/", "attempts"] == 3

    # Fixed, but given up on; a new alias path is looked up, and it heals the old path too.
    site.always_fail.clear()
    site.articles["broken"] = {"headline": "Fixed", "pub_date": "2024-05-03T10:00:00Z", "url": None}
    result = tribune_resolve([*paths, "/2024/05/03/broken/amp/"], cache, source, NOW + timedelta(hours=9))
    assert article_rows(result) == [("broken", "/2024/05/03/broken/", "Fixed", T("2024-05-03T10:00Z"), None)]
    assert path_rows(result) == [
        ("/2024/05/03/broken/", "broken", None, 3),
        ("/2024/05/03/broken/amp/", "broken", None, 1),
    ]


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
    _tribune_newsroom(site)
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

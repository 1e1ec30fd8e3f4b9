from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from article_rec_assets.catalogue.resolver import (
    Resolution,
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
    server: NewsroomServer

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


class NewsroomServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, newsroom: FakeNewsroom) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.newsroom = newsroom

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out closed its socket before a slow answer


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


def tribune_newsroom(site: FakeNewsroom) -> None:
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


@pytest.fixture
def newsroom() -> Iterator[tuple[FakeNewsroom, str]]:
    site = FakeNewsroom()
    server = NewsroomServer(site)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def city_newsroom(site: FakeNewsroom) -> None:
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

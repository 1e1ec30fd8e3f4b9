"""HTTP, politely and defensively: a per-site rate limit shared by all threads, bounded
concurrency, timeouts, retries with jittered exponential backoff on 429, 5xx and connection
errors (honouring `Retry-After`), and a User-Agent that says who is asking.

A CMS may also answer badly or with hostility; every answer is bounded: its body is streamed up to
`max_body_bytes`, it must be complete within `request_deadline_seconds` of wall-clock time (a
watchdog shuts the socket of a server that trickles bytes), redirects are followed only within
the configured origin and a few hops (each through the rate limiter and counted), and a run's
lookups stop after `lookup_budget_seconds` (`LookupBudgetSpent`: the rest wait for the next run).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from article_rec_assets.catalogue.articles import CatalogueSourceDown, LookupBudgetSpent
from article_rec_assets.settings.catalogue_sources import HttpSourceSettings


class RequestFailed(Exception):
    """One request gave no usable answer, after its retries (an article-level failure)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class RateLimiter:
    """Request starts at least 1 / `per_second` apart, across all threads."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)

    def pause_until(self, moment: float) -> None:
        """No request starts before `moment` (a server asked us to slow down)."""
        with self._lock:
            self._next = max(self._next, moment)


@dataclass(frozen=True)
class Answer:
    """A response the API meant: 2xx with a JSON body, or 404 / 410 (`data` is None)."""

    url: str
    status: int
    data: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class _Failure:
    reason: str
    retry: bool
    site_level: bool  # says something about the site rather than one article
    retry_after: float | None = None


class PoliteHttpClient:
    """GETs JSON under a site's rate limit, concurrency, timeouts and retries, and notices when the
    site as a whole is down (`outage_after_failures` failures in a row, or nothing but failures
    that point at the site; see `ensure_reachable`)."""

    def __init__(self, site: str, settings: HttpSourceSettings) -> None:
        self.site = site
        self.settings = settings
        self.limiter = RateLimiter(settings.requests_per_second)
        self.origin = _origin(settings.base_url)
        self._budget_ends = time.monotonic() + settings.lookup_budget_seconds
        self.requests = 0  # HTTP requests sent, retries included
        self.answered = 0
        self.failed = 0
        self._site_failures = 0
        self._consecutive_failures = 0
        self._last_failure: RequestFailed | None = None
        self._down: CatalogueSourceDown | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._random = random.Random()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:  # one per thread: requests does not promise a shared Session is safe
            session = requests.Session()
            session.headers.update({"User-Agent": self.settings.user_agent, "Accept": "application/json"})
            adapter = _WatchedAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def get(self, url: str, params: dict[str, Any] | None = None) -> Answer:
        """The answer to GET `url`; raises `RequestFailed` when there is none after the retries,
        `CatalogueSourceDown` when the site looks down, and `LookupBudgetSpent` once the run's
        time for lookups is over."""
        failure = _Failure("not attempted", retry=False, site_level=False)
        for attempt in range(self.settings.max_retries + 1):
            answer_or_failure = self._attempt(url, params)
            if isinstance(answer_or_failure, Answer):
                with self._lock:
                    self.answered += 1
                    self._consecutive_failures = 0
                return answer_or_failure
            failure = answer_or_failure
            if not failure.retry or attempt == self.settings.max_retries:
                break
            delay = self._backoff(attempt, failure.retry_after)
            if delay is None:  # the server asks for a longer pause than we are willing to make
                break
            time.sleep(delay)
        self._record_failure(url, failure)
        raise RequestFailed(url, failure.reason)

    def _attempt(self, url: str, params: dict[str, Any] | None) -> Answer | _Failure:
        """One GET, following redirects within the origin: each hop waits for the rate limiter
        and counts as a request."""
        for _ in range(self.settings.max_redirects + 1):
            if time.monotonic() > self._budget_ends:
                raise LookupBudgetSpent(
                    f"{self.site}: the run's {self.settings.lookup_budget_seconds:g} s for lookups are spent"
                )
            self._raise_if_down()
            self.limiter.wait()
            self._raise_if_down()
            with self._lock:
                self.requests += 1
            result = self._request(url, params)
            if not isinstance(result, str):
                return result
            target = urljoin(url, result)
            if _origin(target) != self.origin:
                origin = urlsplit(self.settings.base_url)
                return _Failure(
                    f"redirected off {origin.scheme}://{origin.netloc} to {target[:200]}", False, False
                )
            url, params = target, None  # the redirect's URL carries its own query
        return _Failure(f"more than {self.settings.max_redirects} redirects", False, False)

    def _request(self, url: str, params: dict[str, Any] | None) -> Answer | _Failure | str:
        """One HTTP exchange, bounded in size and time: an answer, a failure, or a redirect's
        Location."""
        deadline = self.settings.request_deadline_seconds
        watchdog = _Watchdog(deadline)
        try:
            with watchdog:
                response = self._session().get(
                    url,
                    params=params,
                    timeout=self.settings.timeout_seconds,
                    stream=True,
                    allow_redirects=False,
                )
                with response:
                    if response.is_redirect and response.headers.get("Location"):
                        return response.headers["Location"]
                    body = _capped_body(response, self.settings.max_body_bytes)
            if watchdog.fired:  # a body read until the connection closes ends "normally" when cut
                return _Failure(f"no complete answer within the {deadline:g} s deadline", False, True)
            if isinstance(body, _Failure):
                return body
            return self._read(url, response.status_code, dict(response.headers), body)
        except (requests.RequestException, OSError) as exc:
            if watchdog.fired:
                return _Failure(f"no complete answer within the {deadline:g} s deadline", False, True)
            if isinstance(exc, requests.Timeout):
                return _Failure(f"timed out after {self.settings.timeout_seconds:g} s ({exc})", True, True)
            if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError | OSError):
                return _Failure(f"connection failed: {type(exc).__name__}: {exc}", True, True)
            return _Failure(f"request failed: {type(exc).__name__}: {exc}", False, False)

    def _read(self, url: str, status: int, headers: dict[str, str], body: bytes) -> Answer | _Failure:
        if status in (404, 410):
            return Answer(url, status, None, headers)
        if status == 429 or status >= 500:
            retry_after = _retry_after_seconds(headers.get("Retry-After"))
            if retry_after:  # every thread waits, not only this one
                self.limiter.pause_until(
                    time.monotonic() + min(retry_after, self.settings.max_backoff_seconds)
                )
            # 500 is often one article breaking the application; 502/503/504/429 are the site.
            return _Failure(f"HTTP {status}", True, status != 500, retry_after)
        if 200 <= status < 300:
            try:
                return Answer(url, status, json.loads(body), headers)
            except (ValueError, RecursionError) as exc:  # RecursionError: nesting beyond Python's stack
                return _Failure(
                    f"malformed JSON (HTTP {status}): {type(exc).__name__}: {str(exc)[:200]}", False, False
                )
        # 401/403 to an API that should be public is usually a firewall refusing us.
        return _Failure(f"HTTP {status}", False, status in (401, 403))

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        cap = self.settings.max_backoff_seconds
        if retry_after is not None and retry_after > cap:
            return None
        base = min(cap, self.settings.backoff_seconds * 2**attempt)
        delay = base / 2 + self._random.uniform(0, base / 2)  # "equal jitter"
        return max(delay, retry_after or 0.0)

    def _record_failure(self, url: str, failure: _Failure) -> None:
        with self._lock:
            self.failed += 1
            self._consecutive_failures += 1
            self._site_failures += failure.site_level
            self._last_failure = RequestFailed(url, failure.reason)
            if self._consecutive_failures >= self.settings.outage_after_failures and self._down is None:
                self._down = CatalogueSourceDown(
                    self.site,
                    url,
                    f"{failure.reason} ({self._consecutive_failures} requests failed in a row)",
                )
        self._raise_if_down()

    def _raise_if_down(self) -> None:
        if self._down is not None:
            raise self._down

    def ensure_reachable(self) -> None:
        """Raise when no request was answered and some failure pointed at the site (connection
        refused, timeouts, 429/502/503/504, 401/403). Failures that only an article could cause
        (a 500, malformed JSON) are that article's `fetch_error`."""
        self._raise_if_down()
        if self.answered == 0 and self._site_failures and self._last_failure is not None:
            raise CatalogueSourceDown(
                self.site, self._last_failure.url, f"no request was answered: {self._last_failure.reason}"
            )

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """`fn` over `items` on at most `concurrency` threads, results in order."""
        items = list(items)
        workers = min(self.settings.concurrency, len(items))
        if workers <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(workers, thread_name_prefix=f"catalogue-{self.site}") as pool:
            futures = [pool.submit(fn, item) for item in items]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # `str.isdigit` also says yes to "²" and "٣"
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _capped_body(response: requests.Response, limit: int) -> bytes | _Failure:
    """The body, streamed: a failure as soon as it (or its announced length) passes `limit`."""
    announced = response.headers.get("Content-Length", "")
    if announced.isascii() and announced.isdigit() and int(announced) > limit:
        return _Failure(f"body of {int(announced):,} bytes, above the {limit:,} bytes accepted", False, False)
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            return _Failure(f"body above the {limit:,} bytes accepted", False, False)
        chunks.append(chunk)
    return b"".join(chunks)


# The socket each thread's request is being answered on, for its watchdog.
_ANSWERING = threading.local()


class _Watchdog:
    """Shuts the socket of this thread's request once `seconds` have passed: the blocked read
    fails at once, however slowly the server trickles its bytes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._timer: threading.Timer | None = None
        self._socket: list[socket.socket | None] = [None]

    def __enter__(self) -> _Watchdog:
        _ANSWERING.socket = self._socket
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        _ANSWERING.socket = None

    def _fire(self) -> None:
        self.fired = True
        sock = self._socket[0]
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _watched(connection_class: type) -> type:
    class Watched(connection_class):  # type: ignore[misc, valid-type]
        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            holder = getattr(_ANSWERING, "socket", None)
            if holder is not None:
                holder[0] = self.sock
            return super().getresponse(*args, **kwargs)

    return Watched


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _watched(HTTPConnection)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _watched(HTTPSConnection)


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections show their socket to the request's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class HttpArticleSource:
    def __init__(self, site: str, settings: HttpSourceSettings) -> None:
        self.site = site
        self.client = PoliteHttpClient(site, settings)

    @property
    def requests(self) -> int:
        return self.client.requests

    def ensure_reachable(self) -> None:
        self.client.ensure_reachable()

    def close(self) -> None:
        self.client.close()

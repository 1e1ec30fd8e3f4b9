"""Per-site article catalogue sources: which URL paths are articles, their ids, titles and publish times.

A site names its articles in its URL paths (`articles.path_pattern`, a named group `external_id`);
a source says what the newsroom knows about each id:

- `WordPressSource`: the WordPress REST API (`/wp-json/wp/v2/posts`), asked for several ids at once
  (`include=`), and for the posts modified lately (`modified_after=`, paged by `X-WP-TotalPages`).
  Tags and categories can mark a post as excluded (sponsored content).
- `JsonApiSource`: a JSON articles API in the style of texas-tribune's (`/api/v2/articles/<id>`
  with `headline`, `pub_date`, `url`), one request per article.
- `FileSource`: a catalogue exported as CSV or JSON lines (external_id, path, title, published_at).

`resolve_paths` turns the distinct paths of new events into article rows and path rows (the
serving database's `path` table is the cache of the latter, plus an `attempts` count). Only paths
the cache does not settle are looked up; articles published within the last day are fetched again
every run (newsrooms fix titles and times); a `fetch_error` is tried again on later runs, up to a
limit. One failing article never fails the run; a source that is down raises `CatalogueSourceDown`.

HTTP is polite: a per-site rate limit shared by all threads, bounded concurrency, timeouts, retries
with jittered exponential backoff on 429, 5xx and connection errors (honouring `Retry-After`), and
a User-Agent that says who is asking. Plain Python: no Dagster here.
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote, urlsplit

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator
from requests.adapters import HTTPAdapter

# This module imports nothing of the package at import time (`sites.py` can import the settings
# models below without a cycle: `logic.catalogue` and `logic.ingestion` import `sites`).

# AMP cache URLs and a trailing /amp, as `logic.ingestion` unwraps them (a test keeps them equal).
AMP_CACHE_PREFIX = re.compile(r"^/[cv]/s/([^/]+)(/.*)?$")
AMP_SUFFIX = re.compile(r"/amp/?$")

# Exclude reasons (the `path` and `article` rows' `exclude_reason`; NA: a recommendable article).
NO_EXTERNAL_ID = "no_external_id"  # the path does not match the site's pattern
FAILED_SITE_VALIDATION = "failed_site_validation"  # a non-article section, or a link off the pattern
NOT_FOUND = "not_found"  # the source has no such (public) article
NOT_PUBLISHED = "not_published"  # the source knows it, but not as published
NO_PUBLISH_DATE = "no_publish_date"  # an article without a publish time is never recommended
EXCLUDED_TAG = "excluded_tag"  # WordPress: carries one of the site's exclude tags (sponsored, ...)
EXCLUDED_CATEGORY = "excluded_category"  # WordPress: in one of the site's exclude categories
DUPLICATE_PATH = "duplicate_path"  # the source's link is another article's address (a re-post)
FETCH_ERROR = "fetch_error"  # the source did not answer usefully; tried again on later runs
RETRYABLE_REASONS = frozenset({FETCH_ERROR})

ARTICLE_COLUMNS = ("external_id", "path", "title", "published_at", "exclude_reason")
PATH_COLUMNS = ("path", "external_id", "exclude_reason", "attempts")
ARTICLE_DTYPES = {
    "external_id": "string",
    "path": "string",
    "title": "string",
    "published_at": "datetime64[ns, UTC]",
    "exclude_reason": "string",
}
PATH_DTYPES = {"path": "string", "external_id": "string", "exclude_reason": "string", "attempts": "int64"}

DEFAULT_USER_AGENT = "article-rec-assets/1.0 (news recommendation catalogue bot; reads article metadata)"


# Settings


class _SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSourceSettings(_SourceSettings):
    """How politely a source is asked: shared by every HTTP source kind."""

    base_url: str
    requests_per_second: float = Field(2.0, gt=0, le=100)
    concurrency: int = Field(2, ge=1, le=16)
    timeout_seconds: float = Field(10.0, gt=0)
    # Retries after the first attempt, on 429, 5xx, timeouts and connection errors.
    max_retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0)
    # No pause is longer; a `Retry-After` asking for more gives the request up instead.
    max_backoff_seconds: float = Field(60.0, gt=0)
    user_agent: str = Field(DEFAULT_USER_AGENT, min_length=1)
    # This many requests failing in a row (after their retries) mean the site is down.
    outage_after_failures: int = Field(5, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
        return value.rstrip("/")


class WordPressSource(HttpSourceSettings):
    source: Literal["wordpress"] = "wordpress"
    # Term ids (as in a post's `tags` / `categories`) that exclude a post, e.g. a "sponsored" tag.
    exclude_tags: tuple[int, ...] = ()
    exclude_categories: tuple[int, ...] = ()
    posts_path: str = "/wp-json/wp/v2/posts"
    ids_per_request: int = Field(50, ge=1, le=100)  # WordPress answers at most 100 per page
    # Refresh by listing the posts modified lately (one or two pages a run), rather than by id only.
    refresh_by_modified: bool = True
    listing_page_size: int = Field(100, ge=1, le=100)
    max_listing_pages: int = Field(20, ge=1)


class JsonApiSource(HttpSourceSettings):
    source: Literal["json_api"] = "json_api"
    article_path: str = "/api/v2/articles/{id}"
    title_field: str = "headline"
    published_field: str = "pub_date"
    url_field: str = "url"

    @field_validator("article_path")
    @classmethod
    def _has_id(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("article_path needs an {id} placeholder")
        return value


class FileSource(_SourceSettings):
    source: Literal["file"] = "file"
    # A CSV or JSON-lines file (external_id, path, title, published_at[, exclude_reason]),
    # relative to the data directory.
    path: str


def _source_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("source", "file")
    return getattr(value, "source", None)


# What `articles.catalogue` can become in a site's YAML; `source` picks the kind (default `file`).
CatalogueSource = Annotated[
    Annotated[FileSource, Tag("file")]
    | Annotated[WordPressSource, Tag("wordpress")]
    | Annotated[JsonApiSource, Tag("json_api")],
    Discriminator(_source_kind),
]


# Errors


class CatalogueSourceDown(RuntimeError):
    """A site's catalogue source cannot be reached or does not answer: the run fails loudly rather
    than marking every path it could not look up."""

    def __init__(self, site: str, url: str, reason: str) -> None:
        super().__init__(f"catalogue source of site {site!r} is down: {url}: {reason}")
        self.site = site
        self.url = url
        self.reason = reason


class RequestFailed(Exception):
    """One request gave no usable answer, after its retries (an article-level failure)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


# Polite HTTP


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
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
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
        """The answer to GET `url`; raises `RequestFailed` when there is none after the retries, and
        `CatalogueSourceDown` when the site looks down."""
        failure = _Failure("not attempted", retry=False, site_level=False)
        for attempt in range(self.settings.max_retries + 1):
            self._raise_if_down()
            self.limiter.wait()
            self._raise_if_down()
            with self._lock:
                self.requests += 1
            try:
                response = self._session().get(url, params=params, timeout=self.settings.timeout_seconds)
            except requests.Timeout as exc:
                failure = _Failure(f"timed out after {self.settings.timeout_seconds:g} s ({exc})", True, True)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                failure = _Failure(f"connection failed: {type(exc).__name__}: {exc}", True, True)
            except requests.RequestException as exc:
                failure = _Failure(f"request failed: {type(exc).__name__}: {exc}", False, False)
            else:
                answer_or_failure = self._read(url, response)
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

    def _read(self, url: str, response: requests.Response) -> Answer | _Failure:
        status = response.status_code
        headers = dict(response.headers)
        if status in (404, 410):
            return Answer(url, status, None, headers)
        if status == 429 or status >= 500:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if retry_after:  # every thread waits, not only this one
                self.limiter.pause_until(
                    time.monotonic() + min(retry_after, self.settings.max_backoff_seconds)
                )
            # 500 is often one article breaking the application; 502/503/504/429 are the site.
            return _Failure(f"HTTP {status}", True, status != 500, retry_after)
        if 200 <= status < 300:
            try:
                return Answer(url, status, response.json(), headers)
            except ValueError as exc:
                return _Failure(f"malformed JSON (HTTP {status}): {exc}", False, False)
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
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


# What a source says about an article


@dataclass(frozen=True)
class SourceArticle:
    external_id: str
    title: str
    published_at: pd.Timestamp | None  # UTC
    url: str | None  # the canonical link or path, when the source gives one
    exclude_reason: str | None = None  # the source's own rules (sponsored tag, not published)


@dataclass(frozen=True)
class NotFound:
    reason: str


@dataclass(frozen=True)
class FetchFailed:
    reason: str


Outcome = SourceArticle | NotFound | FetchFailed


class ArticleSource(Protocol):
    """What `resolve_paths` needs of a source; a new kind (an Arc content API, ...) implements it."""

    site: str

    def accepts_id(self, external_id: str) -> bool:
        """Whether the source could know an article by this id at all."""
        ...

    def fetch(self, external_ids: Sequence[str], modified_since: datetime) -> dict[str, Outcome]:
        """An outcome for each of `external_ids`, and for any other article the source lists as
        changed since `modified_since` (a refresh listing). May raise `CatalogueSourceDown`."""
        ...

    def ensure_reachable(self) -> None: ...

    def close(self) -> None: ...

    @property
    def requests(self) -> int: ...


def clean_title(raw: object) -> str:
    """A title as text: tags dropped, HTML entities decoded, whitespace collapsed; quotes and emoji kept."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return ""
    text = re.sub(r"<[^>]*>", "", str(raw))
    return " ".join(html.unescape(text).split())


def parse_time(raw: object) -> pd.Timestamp | None:
    """A UTC time from an ISO 8601 string (or epoch seconds); a time without offset is UTC
    (WordPress's `date_gmt`); None when there is no usable time."""
    if raw is None or isinstance(raw, bool) or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        # A number is seconds since the epoch (pandas would read nanoseconds).
        moment = pd.Timestamp(raw, unit="s") if isinstance(raw, int | float) else pd.Timestamp(raw)
    except (TypeError, ValueError):
        return None
    if pd.isna(moment):
        return None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def normalize_path(path_or_url: str) -> str:
    """The article path behind a path or URL: no host, query or fragment, AMP-cache prefix
    (`/c/s/<host>/...`, `/v/s/<host>/...`) unwrapped and a trailing `/amp` dropped, as ingestion does."""
    path = path_or_url.strip()
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0].split("#", 1)[0]
    amp = AMP_CACHE_PREFIX.match(path)
    if amp:
        path = amp.group(2) or "/"
    path = AMP_SUFFIX.sub("/", path)
    return path or "/"


class _HttpArticleSource:
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


_WP_FIELDS = "id,date_gmt,modified_gmt,link,status,title,categories,tags"
# WordPress compares `modified_after` with the site's local modification time, whatever offset the
# value carries; asking from this much earlier covers every time zone (a few extra posts at most).
_WP_LOCAL_TIME_MARGIN = timedelta(hours=14)


class WordPressArticles(_HttpArticleSource):
    def __init__(self, site: str, settings: WordPressSource) -> None:
        super().__init__(site, settings)
        self.settings = settings
        self.posts_url = settings.base_url + settings.posts_path

    def accepts_id(self, external_id: str) -> bool:
        return external_id.isascii() and external_id.isdigit()

    def fetch(self, external_ids: Sequence[str], modified_since: datetime) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        if self.settings.refresh_by_modified:
            # A failed listing still leaves the ids below to ask for; an outage is noticed there.
            with contextlib.suppress(RequestFailed):
                outcomes.update(self._modified_since(modified_since))
        todo = sorted((i for i in set(external_ids) if i not in outcomes), key=int)
        size = self.settings.ids_per_request
        for batch in self.client.map(
            self._fetch_batch, [todo[i : i + size] for i in range(0, len(todo), size)]
        ):
            outcomes.update(batch)
        return outcomes

    def _modified_since(self, since: datetime) -> dict[str, Outcome]:
        after = (pd.Timestamp(since).tz_convert("UTC") - _WP_LOCAL_TIME_MARGIN).strftime("%Y-%m-%dT%H:%M:%S")

        def page(number: int) -> Answer:
            size = self.settings.listing_page_size
            params = {"modified_after": after, "orderby": "modified", "order": "desc", "per_page": size}
            return self.client.get(self.posts_url, {**params, "page": number, "_fields": _WP_FIELDS})

        first = page(1)
        try:
            pages = int(first.headers.get("X-WP-TotalPages", "1"))
        except ValueError:
            pages = 1
        answers = [first, *self.client.map(page, range(2, min(pages, self.settings.max_listing_pages) + 1))]
        outcomes: dict[str, Outcome] = {}
        for answer in answers:
            if not isinstance(answer.data, list):
                raise RequestFailed(answer.url, "the posts listing is not a JSON list")
            for post in answer.data:
                if isinstance(post, dict) and str(post.get("id", "")).isdigit():
                    outcomes[str(post["id"])] = self._parse(str(post["id"]), post)
        return outcomes

    def _fetch_batch(self, ids: list[str]) -> dict[str, Outcome]:
        if len(ids) == 1:
            return {ids[0]: self._fetch_one(ids[0])}
        try:
            answer = self.client.get(
                self.posts_url,
                {"include": ",".join(ids), "per_page": len(ids), "orderby": "include", "_fields": _WP_FIELDS},
            )
            if not isinstance(answer.data, list):
                raise RequestFailed(answer.url, "the posts listing is not a JSON list")
        except RequestFailed:
            # One broken post can break the whole answer: ask for each on its own.
            return {external_id: self._fetch_one(external_id) for external_id in ids}
        posts = {str(p.get("id")): p for p in answer.data if isinstance(p, dict)}
        return {
            i: self._parse(i, posts[i]) if i in posts else NotFound("not among the published posts")
            for i in ids
        }

    def _fetch_one(self, external_id: str) -> Outcome:
        try:
            answer = self.client.get(f"{self.posts_url}/{external_id}", {"_fields": _WP_FIELDS})
        except RequestFailed as exc:
            return FetchFailed(str(exc))
        if answer.data is None:
            return NotFound(f"HTTP {answer.status}")
        return self._parse(external_id, answer.data)

    def _parse(self, external_id: str, post: Any) -> Outcome:
        try:
            title = post.get("title")
            reason = None
            if post.get("status", "publish") != "publish":
                reason = NOT_PUBLISHED
            elif set(post.get("tags") or ()) & set(self.settings.exclude_tags):
                reason = EXCLUDED_TAG
            elif set(post.get("categories") or ()) & set(self.settings.exclude_categories):
                reason = EXCLUDED_CATEGORY
            return SourceArticle(
                external_id=external_id,
                title=clean_title(title.get("rendered") if isinstance(title, dict) else title),
                published_at=parse_time(post.get("date_gmt")),
                url=post.get("link") or None,
                exclude_reason=reason,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            return FetchFailed(f"malformed post {external_id}: {type(exc).__name__}: {exc}")


class JsonApiArticles(_HttpArticleSource):
    def __init__(self, site: str, settings: JsonApiSource) -> None:
        super().__init__(site, settings)
        self.settings = settings

    def accepts_id(self, external_id: str) -> bool:
        return bool(external_id.strip())

    def fetch(self, external_ids: Sequence[str], modified_since: datetime) -> dict[str, Outcome]:
        ids = sorted(set(external_ids))
        return dict(zip(ids, self.client.map(self._fetch_one, ids), strict=True))

    def _fetch_one(self, external_id: str) -> Outcome:
        url = self.settings.base_url + self.settings.article_path.format(id=quote(external_id, safe=""))
        try:
            answer = self.client.get(url)
        except RequestFailed as exc:
            return FetchFailed(str(exc))
        if answer.data is None:
            return NotFound(f"HTTP {answer.status}")
        data = answer.data
        if not isinstance(data, dict):
            return FetchFailed(f"{url}: the answer is not a JSON object")
        link = data.get(self.settings.url_field)
        return SourceArticle(
            external_id=external_id,
            title=clean_title(data.get(self.settings.title_field)),
            published_at=parse_time(data.get(self.settings.published_field)),
            url=link if isinstance(link, str) and link else None,
        )


class FileArticles:
    """A catalogue file: every run lists the whole file (a file is cheap to read, and its
    articles are then known before anyone reads them)."""

    requests = 0

    def __init__(self, site: str, settings: FileSource, data_dir: str | Path | None = None) -> None:
        self.site = site
        path = Path(data_dir) / settings.path if data_dir is not None else Path(settings.path)
        if not path.is_file():
            raise CatalogueSourceDown(site, str(path), "the catalogue file does not exist")
        from article_rec_assets.logic.catalogue import read_catalogue_file  # see the imports above

        frame = read_catalogue_file(path)
        reasons = frame["exclude_reason"] if "exclude_reason" in frame.columns else None
        self.records: dict[str, SourceArticle] = {}
        for position, row in enumerate(frame.itertuples(index=False)):
            reason = None if reasons is None else reasons.iloc[position]
            external_id = str(row.external_id)
            self.records[external_id] = SourceArticle(  # a repeated id: the last row wins
                external_id=external_id,
                title=clean_title(row.title),
                published_at=parse_time(None if pd.isna(row.published_at) else str(row.published_at)),
                url=str(row.path) if not pd.isna(row.path) and str(row.path) else None,
                exclude_reason=None if reason is None or pd.isna(reason) or reason == "" else str(reason),
            )

    def accepts_id(self, external_id: str) -> bool:
        return True

    def fetch(self, external_ids: Sequence[str], modified_since: datetime) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = dict(self.records)
        for external_id in external_ids:
            outcomes.setdefault(external_id, NotFound("not in the catalogue file"))
        return outcomes

    def ensure_reachable(self) -> None:
        pass

    def close(self) -> None:
        pass


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


# Resolving paths


@dataclass(frozen=True)
class CatalogueCache:
    """What earlier runs resolved: path rows (PATH_COLUMNS) and article rows (ARTICLE_COLUMNS)."""

    paths: pd.DataFrame
    articles: pd.DataFrame


def empty_cache() -> CatalogueCache:
    return CatalogueCache(_frame([], PATH_DTYPES), _frame([], ARTICLE_DTYPES))


@dataclass(frozen=True)
class ResolutionStats:
    paths_seen: int = 0
    paths_settled_by_cache: int = 0
    paths_looked_up: int = 0
    ids_fetched: int = 0
    ids_refreshed: int = 0
    requests: int = 0
    path_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    """Rows to upsert: `articles` by external_id, `paths` by path (new or changed rows only)."""

    articles: pd.DataFrame
    paths: pd.DataFrame
    stats: ResolutionStats


def resolve_paths(
    paths: Iterable[str],
    cache: CatalogueCache,
    source: FileSource | WordPressSource | JsonApiSource | ArticleSource,
    *,
    site: str,
    path_pattern: str | re.Pattern[str],
    now: datetime,
    excluded_path_prefixes: Sequence[str] = (),
    max_fetch_attempts: int = 3,
    refresh_window: timedelta = timedelta(days=1),
    data_dir: str | Path | None = None,
) -> Resolution:
    """Resolve the paths of new events against the cache and the site's source.

    A path the cache holds is settled, unless it is a `fetch_error` tried fewer than
    `max_fetch_attempts` times. Other paths are normalized (query, AMP wrappers) and matched with
    `path_pattern`; every alias of an article gives its external id, and each id is fetched once.
    Ids the cache already has an article for are not fetched again, except the articles published
    within `refresh_window` of `now`, which are fetched every run. Raises `CatalogueSourceDown`
    when the source is down; any other failure stays with its article (`fetch_error`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    pattern = re.compile(path_pattern) if isinstance(path_pattern, str) else path_pattern
    if "external_id" not in pattern.groupindex:
        raise ValueError("path_pattern needs a named group (?P<external_id>...)")

    def id_of(path: str) -> str | None:
        match = pattern.search(path)
        return match.group("external_id") if match and match.group("external_id") else None

    seen = sorted({str(p) for p in paths if p is not None and not pd.isna(p) and str(p).strip()})
    cached_paths = _CacheIndex(cache.paths, "path", PATH_DTYPES)
    cached_articles = _CacheIndex(cache.articles, "external_id", ARTICLE_DTYPES)

    # Which paths to look up, and what the cache and the pattern alone settle.
    lookups: dict[str, int] = {}  # path -> attempts before this run
    for path in seen:
        row = cached_paths.get(path)
        if row is None:
            lookups[path] = 0
        elif row.exclude_reason in RETRYABLE_REASONS and row.attempts < max_fetch_attempts:
            lookups[path] = int(row.attempts)
    settled: dict[str, tuple[str | None, str | None]] = {}  # path -> (external_id, reason)
    known: dict[str, str] = {}  # path -> external id of an article the cache has
    ids_of_paths: dict[str, str] = {}  # path -> external id to fetch
    ours = not _is_article_source(source)
    opened: ArticleSource = open_source(source, site, data_dir) if ours else source  # type: ignore[arg-type]
    requests_before = opened.requests
    try:
        for path in lookups:
            clean = normalize_path(path)
            external_id = id_of(clean)
            if any(clean.startswith(prefix) for prefix in excluded_path_prefixes):
                settled[path] = (external_id, FAILED_SITE_VALIDATION)
            elif external_id is None or not opened.accepts_id(external_id):
                settled[path] = (None, NO_EXTERNAL_ID)
            elif external_id in cached_articles:
                known[path] = external_id
            else:
                ids_of_paths[path] = external_id
        wanted = set(ids_of_paths.values())
        since = (now_ts - refresh_window).to_pydatetime()
        recent = cached_articles.frame["published_at"] >= now_ts - refresh_window
        refresh = {i for i in cached_articles.frame.index[recent.to_numpy()] if opened.accepts_id(i)}
        outcomes = opened.fetch(sorted(wanted | refresh), since)
        opened.ensure_reachable()
        requests_made = opened.requests - requests_before
    finally:
        if ours:
            opened.close()

    # Article rows from what the source said; the canonical path is the source's link.
    seen_paths_of: dict[str, list[str]] = {}
    for path, external_id in ids_of_paths.items():
        seen_paths_of.setdefault(external_id, []).append(normalize_path(path))
    records = {i: o for i, o in outcomes.items() if isinstance(o, SourceArticle)}
    owner_of: dict[str, str] = {}  # fetched id -> the id of the article its paths name
    articles: dict[str, dict[str, Any]] = {}
    for external_id, record in sorted(records.items()):
        canonical = normalize_path(record.url) if record.url else None
        link_id = id_of(canonical) if canonical is not None else external_id
        reason, owner = record.exclude_reason, external_id
        if link_id is None:  # the source's link is not an article path of this site
            reason, canonical = FAILED_SITE_VALIDATION, None
        elif link_id != external_id:
            other = records.get(link_id)
            if other is None or (other.title, other.published_at) == (record.title, record.published_at):
                owner = link_id  # a redirect: the path is an alias of the article the link names
            else:
                reason = DUPLICATE_PATH  # another article of the source has this address (a re-post)
        owner_of[external_id] = owner
        if owner != external_id and owner in records:
            continue  # that article's own record makes its row
        if reason is None and record.published_at is None:
            reason = NO_PUBLISH_DATE
        cached = cached_articles.get(owner)
        path = canonical or min(seen_paths_of.get(external_id, []), default=None)
        path = path or (cached.path if cached is not None else None)
        if not path:
            continue  # listed, but under no path of this site that anyone read
        articles[owner] = {
            "external_id": owner,
            "path": path,
            "title": record.title,
            "published_at": record.published_at,
            "exclude_reason": reason,
        }
    for external_id, outcome in outcomes.items():
        if isinstance(outcome, NotFound) and external_id in cached_articles and external_id not in articles:
            # A known article taken down (or unpublished) while it was still being refreshed.
            articles[external_id] = {**cached_articles[external_id]._asdict(), "exclude_reason": NOT_FOUND}

    def answer_for(external_id: str) -> tuple[str, str | None]:
        """The (external_id, exclude_reason) a path naming `external_id` resolves to."""
        owner = owner_of.get(external_id, external_id)
        if owner in articles:
            return owner, articles[owner]["exclude_reason"]
        if owner in cached_articles:
            return owner, cached_articles[owner].exclude_reason
        if isinstance(outcomes.get(external_id), NotFound):
            return external_id, NOT_FOUND
        return external_id, FETCH_ERROR

    # Path rows: every path looked up, and known paths of refreshed articles whose answer changed.
    path_rows: dict[str, tuple[str, str | None, str | None, int]] = {}
    for path, attempts in lookups.items():
        if path in settled:
            external_id, reason = settled[path]
        else:
            external_id, reason = answer_for(ids_of_paths.get(path) or known[path])
        path_rows[path] = (path, external_id, reason, attempts + 1)
    paths_of_article: dict[str, list[str]] = {}
    affected = cached_paths.frame[cached_paths.frame["external_id"].isin(list(articles))]
    for path, external_id in zip(affected.index, affected["external_id"], strict=True):
        paths_of_article.setdefault(external_id, []).append(path)
    for external_id, article in articles.items():
        reason = article["exclude_reason"]
        for path in [*paths_of_article.get(external_id, []), article["path"]]:
            if not path or path in path_rows:
                continue
            old = cached_paths.get(path)
            if old is None:
                path_rows[path] = (path, external_id, reason, 0)
            elif (old.external_id, old.exclude_reason) != (external_id, reason):
                path_rows[path] = (path, external_id, reason, old.attempts)

    article_frame = _frame(
        [tuple(articles[i][c] for c in ARTICLE_COLUMNS) for i in sorted(articles)], ARTICLE_DTYPES
    )
    path_frame = _frame([path_rows[p] for p in sorted(path_rows)], PATH_DTYPES)
    reasons = path_frame["exclude_reason"].fillna("article").value_counts()
    stats = ResolutionStats(
        paths_seen=len(seen),
        paths_settled_by_cache=len(seen) - len(lookups),
        paths_looked_up=len(lookups),
        ids_fetched=len(wanted),
        ids_refreshed=len(refresh - wanted),
        requests=requests_made,
        path_reasons={str(k): int(v) for k, v in sorted(reasons.items())},
    )
    return Resolution(article_frame, path_frame, stats)


def merge_resolution(cache: CatalogueCache, resolution: Resolution) -> CatalogueCache:
    """The cache after a run: its rows upserted with the resolution's (by path, by external id)."""

    def upsert(old: pd.DataFrame, new: pd.DataFrame, key: str, dtypes: dict[str, str]) -> pd.DataFrame:
        parts = [f[list(dtypes)].astype(dtypes) for f in (old, new) if len(f)]
        if not parts:
            return _frame([], dtypes)
        both = pd.concat(parts, ignore_index=True).drop_duplicates(key, keep="last")
        return both.sort_values(key, kind="stable").reset_index(drop=True)

    return CatalogueCache(
        upsert(cache.paths, resolution.paths, "path", PATH_DTYPES),
        upsert(cache.articles, resolution.articles, "external_id", ARTICLE_DTYPES),
    )


def _is_article_source(source: object) -> bool:
    return not isinstance(source, BaseModel) and hasattr(source, "fetch") and hasattr(source, "accepts_id")


def _na_to_none(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


class _CacheIndex:
    """Cache rows by key (the last row of a repeated key wins: the `path` table has no unique
    constraint), read one at a time: a site's path table is large, a run touches few of its rows."""

    def __init__(self, frame: pd.DataFrame, key: str, dtypes: dict[str, str]) -> None:
        frame = frame.copy()
        if "attempts" in dtypes and "attempts" not in frame.columns:
            frame["attempts"] = 0  # rows from a table without the column: no attempts counted yet
        if "attempts" in frame.columns:
            frame["attempts"] = pd.to_numeric(frame["attempts"], errors="coerce").fillna(0)
        if "published_at" in frame.columns:
            frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
        frame = frame[list(dtypes)].astype(dtypes).drop_duplicates(key, keep="last")
        self.frame = frame.set_index(frame[key].to_numpy(dtype=object))
        self._columns = list(dtypes)

    def __contains__(self, key: object) -> bool:
        return key in self.frame.index

    def get(self, key: str) -> _Row | None:
        if key not in self.frame.index:
            return None
        row = self.frame.loc[key]
        return _Row(**{c: _na_to_none(row[c]) for c in self._columns})

    def __getitem__(self, key: str) -> _Row:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row


class _Row:
    """A cache row with attribute access (and `_asdict`, like a named tuple)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        if "attempts" in values:
            self.attempts = int(values["attempts"] or 0)

    def _asdict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _frame(rows: list[tuple], dtypes: dict[str, str]) -> pd.DataFrame:
    columns = list(dtypes)
    frame = pd.DataFrame.from_records(rows, columns=columns)
    if "published_at" in frame.columns:
        frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    return frame.astype(dtypes)

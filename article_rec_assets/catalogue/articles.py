"""What a source says of an article (found, not found, or not answering), the reasons a path is
not a recommendable article, and the cleaning of titles, times and paths every source shares.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import pandas as pd

from article_rec_assets.ingestion.cleaning import AMP_CACHE_PREFIX, AMP_SUFFIX  # one rule for both

# Exclude reasons (the `path` and `article` rows' `exclude_reason`; NA: a recommendable article).
NO_EXTERNAL_ID = "no_external_id"  # the path does not match the site's pattern
FAILED_SITE_VALIDATION = "failed_site_validation"  # a non-article section, or a link off the pattern
NOT_FOUND = "not_found"  # the source has no such (public) article
NOT_PUBLISHED = "not_published"  # the source knows it, but not as published
NO_PUBLISH_DATE = "no_publish_date"  # an article without a publish time is never recommended
EXCLUDED_TAG = "excluded_tag"  # WordPress: carries one of the site's exclude tags (sponsored, ...)
EXCLUDED_CATEGORY = "excluded_category"  # WordPress: in one of the site's exclude categories
DUPLICATE_PATH = "duplicate_path"  # the source's link is another article's address (a re-post)
# A publish time before the site's `published_after` or more than a day ahead of the run: a CMS
# default (0001-01-01), a placeholder (9999-12-31) or a unit mix-up, never trusted for ranking.
IMPLAUSIBLE_PUBLISH_DATE = "implausible_publish_date"
FETCH_ERROR = "fetch_error"  # the source did not answer usefully; tried again on later runs
RETRYABLE_REASONS = frozenset({FETCH_ERROR})

# The longest path the `path` table keeps as it is (see `path_key`).
MAX_PATH_BYTES = 1024
# The longest title kept (a headline is a line; a CMS sending a page as its title is cut), and
# how much of a raw title is read at all before cleaning: cleaning time and memory stay bounded.
MAX_TITLE_CHARS = 1000
MAX_RAW_TITLE_CHARS = 20 * MAX_TITLE_CHARS
# How far ahead of the run a publish time may be (scheduled posts and clock skew).
PUBLISH_TIME_AHEAD = pd.Timedelta(days=1)

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


class CatalogueSourceDown(RuntimeError):
    """A site's catalogue source cannot be reached or does not answer: the run fails loudly rather
    than marking every path it could not look up."""

    def __init__(self, site: str, url: str, reason: str) -> None:
        super().__init__(f"catalogue source of site {site!r} is down: {url}: {reason}")
        self.site = site
        self.url = url
        self.reason = reason


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


@dataclass(frozen=True)
class Deferred:
    """Not asked in this run (its time budget for lookups was spent): asked in a later run, and
    nothing is cached meanwhile."""

    reason: str


Outcome = SourceArticle | NotFound | FetchFailed | Deferred


class LookupBudgetSpent(Exception):
    """A run's time budget for asking the source is spent: what is left waits for the next run."""


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


def storable_text(text: str) -> str:
    """Text every serving database stores: NUL characters (PostgreSQL refuses them) and lone
    surrogates (not UTF-8, from a JSON `\\ud800` escape) become U+FFFD."""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def path_key(path: str) -> str:
    """How a path is kept in the catalogue cache (the `path` table), stored text in any case.

    A path up to MAX_PATH_BYTES is kept as it is. A longer one (PostgreSQL's index on (path, site)
    takes about 2,700 bytes a row at most) is kept as its head and the SHA-256 of the whole after
    a `#`: a fragment, so what matches the site's pattern is the head, and two long paths with the
    same head stay two rows."""
    path = storable_text(path)
    raw = path.encode("utf-8")
    if len(raw) <= MAX_PATH_BYTES:
        return path
    head = raw[: MAX_PATH_BYTES - 80].decode("utf-8", "ignore")
    return f"{head}#sha256:{hashlib.sha256(raw).hexdigest()}"


class MalformedAnswer(ValueError):
    """A field of a source's answer has a shape no article can have (a title that is a list, a
    link that is a number): that article's `fetch_error`, never the run's."""


# A tag, closed or not: `<` then a letter, `/`, `!` or `?`, up to its `>`, the next `<` or the end.
# No match scans past the next `<`: one linear pass, whatever the title holds. A `<` before a
# digit or a space is text ("<3", "a < b").
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*(?:>|(?=<)|$)")


def clean_title(raw: object) -> str:
    """A title as text: HTML entities decoded, then tags dropped (an encoded `&lt;script&gt;`
    leaves no markup either), whitespace collapsed, at most
    MAX_TITLE_CHARS; quotes and emoji kept; stored text (no NUL, no lone surrogate). Raises
    `MalformedAnswer` for a title that is not text."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return ""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MalformedAnswer(f"the title is a {type(raw).__name__}, not text")
    text = html.unescape(str(raw)[:MAX_RAW_TITLE_CHARS])
    text = " ".join(_TAG.sub("", text).split())
    return storable_text(text[:MAX_TITLE_CHARS].strip())


# ISO 8601 as CMSs write it: a date, optionally a time and an offset. Anything else (`now`,
# `yesterday`, `1/2/03`) is no time: pandas would read some of those words as the current time.
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?\s*(?:Z|[+-]\d{2}:?\d{2}|UTC)?",
    re.IGNORECASE,
)
# Epoch numbers from this size on are milliseconds: as seconds they would be after year 5138.
_EPOCH_MILLISECONDS_FROM = 1e11


def parse_time(raw: object) -> pd.Timestamp | None:
    """A UTC time from an ISO 8601 string, or epoch seconds (milliseconds from 10^11); a time
    without offset is UTC (WordPress's `date_gmt`); None when there is no usable time. The time
    may lie far outside what the catalogue accepts: `plausible_publish_time` judges that."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int | float):
            if pd.isna(raw):
                return None
            unit = "ms" if abs(raw) >= _EPOCH_MILLISECONDS_FROM else "s"
            moment = pd.Timestamp(raw, unit=unit)
        elif isinstance(raw, str) and _ISO_TIME.fullmatch(raw.strip()):
            moment = pd.Timestamp(raw.strip())
        else:
            return None
    except (TypeError, ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return None
    if pd.isna(moment):
        return None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def plausible_publish_time(moment: pd.Timestamp | None, earliest: pd.Timestamp, now: pd.Timestamp) -> bool:
    """Whether a publish time lies between the site's earliest plausible date and a day after now."""
    return moment is None or earliest <= moment <= now + PUBLISH_TIME_AHEAD


def link_of(raw: object) -> str | None:
    """An article's link or path from a source's answer: text or nothing; any other shape raises
    `MalformedAnswer`."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise MalformedAnswer(f"the link is a {type(raw).__name__}, not text")
    return raw


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

"""Where a site's titles and publish times come from (`articles.catalogue` in its YAML): a file, a
WordPress REST API or a JSON articles API, and how politely an HTTP source is asked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from article_rec_assets.settings.validators import relative_path

DEFAULT_USER_AGENT = "article-rec-assets/1.0 (news recommendation catalogue bot; reads article metadata)"


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
    # Bounds on one answer: a body is read up to this size (a WordPress page of 100 posts is
    # ~50 KB) and an answer must be complete within this wall-clock time (`timeout_seconds` only
    # bounds each wait for the next bytes).
    max_body_bytes: int = Field(5_000_000, ge=1024)
    request_deadline_seconds: float = Field(30.0, gt=0)
    # Redirects are followed only within `base_url`'s scheme, host and port, at most this many.
    max_redirects: int = Field(3, ge=0, le=10)
    # A run asks the source for at most this long; what is left waits, uncached, for the next run.
    lookup_budget_seconds: float = Field(600.0, gt=0)

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

    @field_validator("path")
    @classmethod
    def _below_the_data_directory(cls, value: str) -> str:
        return relative_path(value, "path", "the data directory")


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

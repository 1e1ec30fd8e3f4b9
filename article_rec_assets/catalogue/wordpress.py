"""WordPress's REST API as a source: posts fetched by id in batches, and the recently modified
posts listed to refresh what newsrooms fix after publishing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from article_rec_assets.catalogue.articles import (
    EXCLUDED_CATEGORY,
    EXCLUDED_TAG,
    NOT_PUBLISHED,
    Deferred,
    FetchFailed,
    LookupBudgetSpent,
    MalformedAnswer,
    NotFound,
    Outcome,
    SourceArticle,
    clean_title,
    link_of,
    parse_time,
)
from article_rec_assets.catalogue.http import Answer, HttpArticleSource, RequestFailed
from article_rec_assets.settings.catalogue_sources import WordPressSource

_WP_FIELDS = "id,date_gmt,modified_gmt,link,status,title,categories,tags"
# WordPress compares `modified_after` with the site's local modification time, whatever offset the
# value carries; asking from this much earlier covers every time zone (a few extra posts at most).
_WP_LOCAL_TIME_MARGIN = timedelta(hours=14)


class WordPressArticles(HttpArticleSource):
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
            with contextlib.suppress(RequestFailed, LookupBudgetSpent):
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
                if isinstance(post, dict) and _post_id(post).isdigit():
                    outcomes[_post_id(post)] = self._parse(_post_id(post), post)
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
        except LookupBudgetSpent as exc:
            return {external_id: Deferred(str(exc)) for external_id in ids}
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
        except LookupBudgetSpent as exc:
            return Deferred(str(exc))
        if answer.data is None:
            return NotFound(f"HTTP {answer.status}")
        return self._parse(external_id, answer.data)

    def _parse(self, external_id: str, post: Any) -> Outcome:
        """A post as an article; a post of an unexpected shape (a link that is a number, tags
        that are not a list of term ids) is that article's `fetch_error`: its tags cannot be
        trusted to exclude it."""
        try:
            if not isinstance(post, dict):
                raise MalformedAnswer(f"the post is a {type(post).__name__}, not an object")
            title = post.get("title")
            tags, categories = (
                _term_ids(post.get("tags"), "tags"),
                _term_ids(post.get("categories"), "categories"),
            )
            reason = None
            if post.get("status", "publish") != "publish":
                reason = NOT_PUBLISHED
            elif tags & set(self.settings.exclude_tags):
                reason = EXCLUDED_TAG
            elif categories & set(self.settings.exclude_categories):
                reason = EXCLUDED_CATEGORY
            return SourceArticle(
                external_id=external_id,
                title=clean_title(title.get("rendered") if isinstance(title, dict) else title),
                published_at=parse_time(post.get("date_gmt")),
                url=link_of(post.get("link")),
                exclude_reason=reason,
            )
        except (MalformedAnswer, AttributeError, TypeError, ValueError) as exc:
            return FetchFailed(f"malformed post {external_id}: {type(exc).__name__}: {exc}")


def _post_id(post: dict) -> str:
    """A post's id as text; "" when it is not a plain (ASCII) number."""
    value = str(post.get("id", ""))
    return value if value.isascii() else ""


def _term_ids(raw: Any, field: str) -> set[int]:
    """A post's tag or category ids: a list of integers (missing: none)."""
    if raw is None:
        return set()
    if not isinstance(raw, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        raise MalformedAnswer(f"`{field}` is not a list of term ids: {str(raw)[:80]!r}")
    return set(raw)

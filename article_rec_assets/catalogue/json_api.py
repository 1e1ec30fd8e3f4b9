"""A JSON articles API as a source (one request per article id, e.g. the texas-tribune API)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from article_rec_assets.catalogue.articles import (
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
from article_rec_assets.catalogue.http import HttpArticleSource, RequestFailed
from article_rec_assets.settings.catalogue_sources import JsonApiSource


class JsonApiArticles(HttpArticleSource):
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
        except LookupBudgetSpent as exc:
            return Deferred(str(exc))
        if answer.data is None:
            return NotFound(f"HTTP {answer.status}")
        data = answer.data
        if not isinstance(data, dict):
            return FetchFailed(f"{url}: the answer is not a JSON object")
        try:
            return SourceArticle(
                external_id=external_id,
                title=clean_title(data.get(self.settings.title_field)),
                published_at=parse_time(data.get(self.settings.published_field)),
                url=link_of(data.get(self.settings.url_field)),
            )
        except MalformedAnswer as exc:
            return FetchFailed(f"{url}: {exc}")

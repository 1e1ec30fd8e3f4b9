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
A new path is looked up only once a window read it `min_reads` times, and at most `max_new_paths`
of them a run (the most read first); what waits is not cached, so a later run looks it up.

How sources are asked (rate limits, retries, a User-Agent) is `catalogue.http`. Plain Python: no
Dagster here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from article_rec_assets.catalogue.articles import (
    ARTICLE_COLUMNS,
    ARTICLE_DTYPES,
    DUPLICATE_PATH,
    FAILED_SITE_VALIDATION,
    FETCH_ERROR,
    IMPLAUSIBLE_PUBLISH_DATE,
    NO_EXTERNAL_ID,
    NO_PUBLISH_DATE,
    NOT_FOUND,
    PATH_DTYPES,
    RETRYABLE_REASONS,
    ArticleSource,
    Deferred,
    NotFound,
    SourceArticle,
    normalize_path,
    path_key,
    plausible_publish_time,
    storable_text,
)
from article_rec_assets.catalogue.sources import open_source
from article_rec_assets.settings.catalogue_sources import FileSource, JsonApiSource, WordPressSource


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
    # New paths left for a later run: read fewer than `min_reads` times, beyond the run's
    # `max_new_paths`, or not asked before the source's time budget ran out.
    paths_waiting: int = 0
    path_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    """Rows to upsert: `articles` by external_id, `paths` by path (new or changed rows only)."""

    articles: pd.DataFrame
    paths: pd.DataFrame
    stats: ResolutionStats


def resolve_paths(
    paths: Iterable[str] | Mapping[str, int],
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
    min_reads: int = 1,
    max_new_paths: int | None = None,
    published_after: date = date(1990, 1, 1),
) -> Resolution:
    """Resolve the paths of new events against the cache and the site's source.

    `paths`: the window's paths, each as often as it was read, or a mapping path -> reads. A path
    the cache holds is settled, unless it is a `fetch_error` tried fewer than `max_fetch_attempts`
    times. A new path read fewer than `min_reads` times, or beyond the `max_new_paths` most read,
    waits (uncached) for a later run. Other paths are normalized (query, AMP wrappers) and matched
    with `path_pattern`; every alias of an article gives its external id, and each id is fetched
    once. Ids the cache already has an article for are not fetched again, except the articles
    published within `refresh_window` of `now`, which are fetched every run. A publish time
    before `published_after` or more than a day after `now` excludes its article
    (`implausible_publish_date`). Raises `CatalogueSourceDown` when the source is down; any other
    failure stays with its article (`fetch_error`).
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

    # Paths as the cache keeps them (stored text, long ones shortened): what is looked up is what is stored.
    reads = _reads(paths)
    seen = sorted(reads)
    cached_paths = _CacheIndex(cache.paths, "path", PATH_DTYPES)
    cached_articles = _CacheIndex(cache.articles, "external_id", ARTICLE_DTYPES)

    # Which paths to look up, and what the cache and the pattern alone settle.
    lookups: dict[str, int] = {}  # path -> attempts before this run
    new_paths, uncached = [], 0
    for path in seen:
        row = cached_paths.get(path)
        if row is None:
            uncached += 1
            if reads[path] >= min_reads:
                new_paths.append(path)
        elif row.exclude_reason in RETRYABLE_REASONS and row.attempts < max_fetch_attempts:
            lookups[path] = int(row.attempts)
    new_paths.sort(key=lambda path: (-reads[path], path))  # the most read first
    asked = new_paths if max_new_paths is None else new_paths[:max_new_paths]
    waiting = uncached - len(asked)
    lookups.update({path: 0 for path in asked})
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
    earliest = pd.Timestamp(published_after).tz_localize("UTC")
    records = {i: o for i, o in outcomes.items() if isinstance(o, SourceArticle)}
    owner_of: dict[str, str] = {}  # fetched id -> the id of the article its paths name
    articles: dict[str, dict[str, Any]] = {}
    for external_id, record in sorted(records.items()):
        canonical = path_key(normalize_path(record.url)) if record.url else None
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
        published_at = record.published_at
        if not plausible_publish_time(published_at, earliest, now_ts):
            reason, published_at = reason or IMPLAUSIBLE_PUBLISH_DATE, None
        if reason is None and published_at is None:
            reason = NO_PUBLISH_DATE
        cached = cached_articles.get(owner)
        path = canonical or min(seen_paths_of.get(external_id, []), default=None)
        path = path or (cached.path if cached is not None else None)
        if not path:
            continue  # listed, but under no path of this site that anyone read
        articles[owner] = {
            "external_id": owner,
            "path": path,
            "title": storable_text(record.title),  # whatever the source sent
            "published_at": published_at,
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
        elif isinstance(outcomes.get(ids_of_paths.get(path, "")), Deferred):
            waiting += attempts == 0  # not asked: no row, so a later run asks
            continue
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
        paths_waiting=waiting,
        path_reasons={str(k): int(v) for k, v in sorted(reasons.items())},
    )
    return Resolution(article_frame, path_frame, stats)


def _reads(paths: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
    """Reads per path as the cache keeps it (stored text, long paths shortened); blank ones dropped."""
    pairs = paths.items() if isinstance(paths, Mapping) else ((p, 1) for p in paths)
    reads: dict[str, int] = {}
    for path, count in pairs:
        if path is None or pd.isna(path) or not str(path).strip():
            continue
        key = path_key(str(path))
        reads[key] = reads.get(key, 0) + int(count)
    return reads


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
        # Rows by key as Python values, made once: a window looks up every path it saw (tens of
        # thousands for a large site), and `frame.loc` is slow row by row.
        self._values = [frame[c].to_numpy(dtype=object) for c in self._columns]
        self._position = {k: i for i, k in enumerate(self.frame.index)}

    def __contains__(self, key: object) -> bool:
        return key in self._position

    def get(self, key: str) -> _Row | None:
        i = self._position.get(key)
        if i is None:
            return None
        return _Row(**{c: _na_to_none(v[i]) for c, v in zip(self._columns, self._values, strict=True)})

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

"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

import time
from datetime import timedelta

from article_rec_assets.catalogue.articles import (
    ARTICLE_DTYPES,
    PATH_DTYPES,
)
from article_rec_assets.catalogue.resolver import (
    empty_cache,
    merge_resolution,
)
from article_rec_assets.settings.catalogue_sources import (
    WordPressSource,
)
from article_rec_assets_tests.catalogue.newsroom import (
    CITY_PATHS,
    FAST,
    NOW,
    USER_AGENT,
    T,
    article_rows,
    city_newsroom,
    city_resolve,
    path_rows,
)

# WordPress


def test_wordpress_resolves_new_paths_into_exact_rows(newsroom) -> None:
    site, url = newsroom
    city_newsroom(site)
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
    city_newsroom(site)
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

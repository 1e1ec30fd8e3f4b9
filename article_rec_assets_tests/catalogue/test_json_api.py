"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

from datetime import timedelta

from article_rec_assets.catalogue.resolver import (
    empty_cache,
    merge_resolution,
)
from article_rec_assets.settings.catalogue_sources import (
    JsonApiSource,
)
from article_rec_assets_tests.catalogue.newsroom import (
    FAST,
    NOW,
    T,
    article_rows,
    path_rows,
    tribune_newsroom,
    tribune_resolve,
)

# JSON articles API


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
    tribune_newsroom(site)
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
    tribune_newsroom(site)
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
    tribune_newsroom(site)
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
    tribune_newsroom(site)
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

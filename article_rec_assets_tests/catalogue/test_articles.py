"""Catalogue sources against a real HTTP server on 127.0.0.1 that answers like WordPress's REST API
and like a texas-tribune style JSON articles API; and against catalogue files."""

from __future__ import annotations

from article_rec_assets.catalogue.articles import (
    clean_title,
    normalize_path,
    parse_time,
)
from article_rec_assets_tests.catalogue.newsroom import T


def test_titles_paths_and_times_are_cleaned() -> None:
    raw = "&#8220;Don&#8217;t&#8221; &amp; <em>won&#039;t</em>: AT&#038;T&nbsp;🎉 &lt;3 "
    assert clean_title(raw) == "“Don’t” & won't: AT&T 🎉 <3"
    assert clean_title(None) == ""
    assert normalize_path("/article/1/a-b/amp/") == "/article/1/a-b/"
    assert normalize_path("/c/s/democitypaper.example/article/1/a-b/?amp_js_v=0.1#x") == "/article/1/a-b/"
    assert normalize_path("https://www.demotribune.example/2024/05/10/x/?utm_source=y") == "/2024/05/10/x/"
    assert parse_time("2024-05-10T08:00:00") == T("2024-05-10T08:00:00Z")
    assert parse_time("2024-05-10T06:30:00-05:00") == T("2024-05-10T11:30:00Z")
    assert parse_time(1715328000) == T("2024-05-10T08:00:00Z")
    assert parse_time(None) is None and parse_time("") is None and parse_time("0000-00-00 00:00:00") is None

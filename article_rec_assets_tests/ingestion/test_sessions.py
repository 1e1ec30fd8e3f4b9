"""Reading time per (reader, session, article, day) from a window's cleaned events, and the filters
applied before (other events, bots, staging hosts, late events, pages that are not articles).

Events are built as Snowplow JSON lines and go through parse_objects and clean_window, as in the
platform; every expected number is worked out by hand in the comments.
"""

import itertools
import uuid

import orjson
import pandas as pd
import pytest

from article_rec_assets.ingestion.cleaning import clean_window, map_unique
from article_rec_assets.ingestion.parsing import ParsedEvents, parse_objects
from article_rec_assets.ingestion.sessions import (
    FILTER_REASONS,
    INTERACTION_DTYPES,
    Sessionized,
    article_ids_for_paths,
    empty_interactions,
    filter_reasons,
    sessionize,
)
from article_rec_assets.settings.sites import SiteConfig, load_sites

HOST = "democitypaper.example"
A1 = "/article/101/first-story/"
A2 = "/article/202/second-story/"
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
    "Safari/537.36"
)
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB = "contexts_com_iab_snowplow_spiders_and_robots_1"
# 2024-05-01T10:00:00Z in epoch seconds.
T0_EPOCH = 1714557600

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def city() -> SiteConfig:
    return load_sites()["demo-city-paper"]


@pytest.fixture(scope="module")
def tribune() -> SiteConfig:
    return load_sites()["demo-tribune"]


def with_events(site: SiteConfig, **update) -> SiteConfig:
    return site.model_copy(update={"events": site.events.model_copy(update=update)})


def with_articles(site: SiteConfig, **update) -> SiteConfig:
    return site.model_copy(update={"articles": site.articles.model_copy(update=update)})


def event(
    at: str,
    name: str = "page_ping",
    path: str | None = A1,
    reader: str | None = "r1",
    session: str | None = "s1",
    host: str | None = HOST,
    ua: str | None = UA,
    collected: str | None = None,
    **fields: object,
) -> bytes:
    """A Snowplow JSON line created at `at` (and collected then, unless `collected`)."""
    record = {
        "event_id": str(uuid.UUID(int=next(_ids))),
        "event_name": name,
        "domain_userid": reader,
        "domain_sessionid": session,
        "page_urlhost": host,
        "page_urlpath": path,
        "useragent": ua,
        "dvce_created_tstamp": at,
        "collector_tstamp": collected or at,
        **fields,
    }
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def amp(
    at: str, name: str = "amp_page_ping", total: float | None = None, client: str = "amp-1", **kw
) -> bytes:
    """An AMP event (reader: the AMP client id; no session id) of AMP page view `apv-1`."""
    fields = {AMP_ID: [{"ampClientId": client}], AMP_WEB_PAGE: [{"ampPageViewId": kw.pop("pv", "apv-1")}]}
    if total is not None:
        fields[AMP_PAGE_PING] = {"totalEngagedTime": total}
    return event(at, name, reader=None, session=None, **fields, **kw)


def parsed(lines: list[bytes], key: str) -> ParsedEvents:
    result = parse_objects([(key, b"\n".join(lines))]) if lines else parse_objects([])
    assert result.rejects.empty, result.rejects
    return result


def run(lines: list[bytes], site: SiteConfig, context: list[bytes] = ()) -> Sessionized:
    cleaned = clean_window(parsed(lines, "window"), parsed(list(context), "context"), site.events)
    return sessionize(cleaned.events, site)


def one_row(interactions: pd.DataFrame, **keys: str) -> pd.Series:
    mask = pd.Series(True, index=interactions.index)
    for name, value in keys.items():
        mask &= interactions[name] == value
    assert mask.sum() == 1, interactions
    return interactions[mask].iloc[0]


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- article ids from paths -----------------------------------------------------------------


def test_article_ids_for_paths(city):
    paths = pd.Series(
        [
            A1,
            "/article/303/slug",  # no trailing slash: allowed by the pattern
            "/article/404/slug/?utm_source=x",  # query string ignored
            "/article/505/slug/#comments",  # fragment ignored
            "/",
            "/about/",
            "/article/abc/slug/",  # not digits
            "/article/606/Upper-Case/",  # slug must be lowercase
            "/news/article/707/slug/",  # anchored at the start
            None,
        ],
        dtype="string",
    )
    ids = article_ids_for_paths(paths, city)
    assert ids.tolist()[:4] == ["101", "303", "404", "505"]
    assert ids.isna().tolist() == [False] * 4 + [True] * 6
    assert str(ids.dtype) == "string"


def test_excluded_path_prefixes(city):
    site = with_articles(city, excluded_path_prefixes=("/article/9",))
    ids = article_ids_for_paths(
        pd.Series(["/article/901/sponsored/", "/article/190/kept/", "/article/9/short/"], dtype="string"),
        site,
    )
    assert ids.isna().tolist() == [True, False, True]
    assert ids.iloc[1] == "190"


def test_tribune_slug_ids_and_excluded_sections(tribune):
    paths = pd.Series(
        ["/2024/05/01/budget-vote/", "/about/", "/newsletters/daily/", "/2024/05/01/Bad_Slug/"],
        dtype="string",
    )
    ids = article_ids_for_paths(paths, tribune)
    assert ids.iloc[0] == "budget-vote"
    assert ids.isna().tolist() == [False, True, True, True]


def test_path_regex_follows_a_changed_path_pattern(city):
    """A site copied with another path pattern must match paths with the new pattern."""
    assert city.path_regex.pattern.startswith("^/article/")  # the original's regex is now cached
    site = with_articles(city, path_pattern=r"^/story/(?P<external_id>\d+)$")
    ids = article_ids_for_paths(pd.Series(["/story/42", A1], dtype="string"), site)
    assert ids.isna().tolist() == [False, True]
    assert ids.iloc[0] == "42"


# --- engaged time ---------------------------------------------------------------------------


def test_engaged_time_is_heartbeat_times_windows_minus_one_plus_five(city):
    # View at 10:00:00, pings at :05, :15, :25 -> windows 10:00:00-09, :10-19, :20-29 -> 3 windows.
    result = run(
        [
            event("2024-05-01T10:00:00Z", "page_view"),
            event("2024-05-01T10:00:05Z"),
            event("2024-05-01T10:00:15Z"),
            event("2024-05-01T10:00:25Z"),
        ],
        city,
    )
    assert len(result.interactions) == 1
    row = result.interactions.iloc[0]
    assert row["engaged_seconds"] == 10 * (3 - 1) + 5 == 25
    assert row["ping_dwell_seconds"] == 3 * 10 == 30
    assert row["pings"] == 3
    assert row["page_views"] == 1
    assert row["external_id"] == "101"
    assert row["reader_id"] == "r1"
    assert row["session_id"] == "s1"
    assert row["article_path"] == A1
    assert row["day"] == day("2024-05-01")
    assert row["first_seen"] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert row["last_seen"] == pd.Timestamp("2024-05-01T10:00:25Z")
    assert result.filtered == {}


def test_pings_in_the_same_window_count_once_for_engaged_time(city):
    # :05 and :07 share the window 10:00:00-09; two pings at :15 (two events) add one window.
    result = run(
        [
            event("2024-05-01T10:00:00Z", "page_view"),
            event("2024-05-01T10:00:05Z"),
            event("2024-05-01T10:00:07Z"),
            event("2024-05-01T10:00:15Z"),
            event("2024-05-01T10:00:15Z"),
        ],
        city,
    )
    row = result.interactions.iloc[0]
    assert row["pings"] == 4
    assert row["engaged_seconds"] == 10 * (2 - 1) + 5 == 15
    assert row["ping_dwell_seconds"] == 40


def test_a_ping_delivered_twice_counts_once(city):
    ping = event("2024-05-01T10:00:15Z")
    result = run([event("2024-05-01T10:00:05Z"), ping, ping], city)
    row = result.interactions.iloc[0]
    assert row["pings"] == 2
    assert row["engaged_seconds"] == 15
    assert row["ping_dwell_seconds"] == 20


def test_windows_are_epoch_aligned_not_relative_to_the_view(city):
    # :09 and :11 are 2 s apart but in two heartbeat windows (floor(epoch / 10) differs).
    row = run([event("2024-05-01T10:00:09Z"), event("2024-05-01T10:00:11Z")], city).interactions.iloc[0]
    assert row["engaged_seconds"] == 15
    assert row["page_views"] == 0


def test_single_ping_is_the_minimum_visit(city):
    lines = [event("2024-05-01T10:00:00Z", "page_view"), event("2024-05-01T10:00:05Z")]
    row = run(lines, city).interactions.iloc[0]
    assert row["engaged_seconds"] == 5
    assert row["ping_dwell_seconds"] == 10


def test_page_view_without_pings_has_zero_engaged_time(city):
    row = run([event("2024-05-01T10:00:00Z", "page_view")], city).interactions.iloc[0]
    assert row["page_views"] == 1
    assert row["pings"] == 0
    assert row["engaged_seconds"] == 0
    assert row["ping_dwell_seconds"] == 0


def test_heartbeat_comes_from_the_site(city):
    site = with_events(city, ping_interval_seconds=30)
    # Pings at :05, :15, :25, :35 -> 30 s windows [0, 30) and [30, 60) -> 2 windows.
    lines = [event(f"2024-05-01T10:00:{s:02d}Z") for s in (5, 15, 25, 35)]
    row = run(lines, site).interactions.iloc[0]
    assert row["engaged_seconds"] == 30 * (2 - 1) + 5 == 35
    assert row["ping_dwell_seconds"] == 4 * 30 == 120


def test_two_page_views_of_one_article_in_a_session_add_up(city):
    # pv-1: pings in 2 windows (15 s); pv-2: pings in 3 windows, one shared in time with pv-1 (25 s).
    pv = {"pv-1": {WEB_PAGE: [{"id": "pv-1"}]}, "pv-2": {WEB_PAGE: [{"id": "pv-2"}]}}
    lines = [
        event("2024-05-01T10:00:00Z", "page_view", **pv["pv-1"]),
        event("2024-05-01T10:00:05Z", **pv["pv-1"]),
        event("2024-05-01T10:00:15Z", **pv["pv-1"]),
        event("2024-05-01T10:00:12Z", "page_view", **pv["pv-2"]),
        event("2024-05-01T10:00:17Z", **pv["pv-2"]),
        event("2024-05-01T10:00:27Z", **pv["pv-2"]),
        event("2024-05-01T10:00:37Z", **pv["pv-2"]),
    ]
    row = run(lines, city).interactions.iloc[0]
    assert row["page_views"] == 2
    assert row["pings"] == 5
    assert row["engaged_seconds"] == 15 + 25
    assert row["ping_dwell_seconds"] == 50


def test_engaged_time_of_a_page_view_split_between_lookback_and_window(city):
    # Context: view and pings in windows a (:05) and b (:15). Window: pings in b, c, d -> 20 s.
    pv = {WEB_PAGE: [{"id": "pv-1"}]}
    context = [
        event("2024-05-01T10:00:00Z", "page_view", **pv),
        event("2024-05-01T10:00:05Z", **pv),
        event("2024-05-01T10:00:15Z", **pv),
    ]
    window = [
        event("2024-05-01T10:00:19Z", **pv),
        event("2024-05-01T10:00:25Z", **pv),
        event("2024-05-01T10:00:35Z", **pv),
    ]
    result = run(window, city, context)
    row = result.interactions.iloc[0]
    assert row["page_views"] == 0  # the view was in the context: not emitted again
    assert row["pings"] == 3
    assert row["engaged_seconds"] == 20
    assert row["ping_dwell_seconds"] == 30
    # The context's own run counted 15 s: 35 s in all, 10 x (4 - 1) + 5.
    assert run(context, city).interactions.iloc[0]["engaged_seconds"] + 20 == 35


def test_rows_are_per_reader_session_article(city):
    lines = [
        event("2024-05-01T10:00:05Z", reader="r1", session="s1", path=A1),
        event("2024-05-01T10:00:15Z", reader="r1", session="s1", path=A1 + "?utm=mail"),
        event("2024-05-01T10:01:05Z", reader="r1", session="s1", path=A2),
        event("2024-05-01T11:00:05Z", reader="r1", session="s2", path=A1),
        event("2024-05-01T10:00:05Z", reader="r2", session=None, path=A1),
    ]
    result = run(lines, city).interactions
    assert len(result) == 4
    first = one_row(result, reader_id="r1", session_id="s1", external_id="101")
    assert first["pings"] == 2
    assert first["engaged_seconds"] == 15
    assert first["article_path"] == A1
    assert one_row(result, reader_id="r1", session_id="s1", external_id="202")["engaged_seconds"] == 5
    assert one_row(result, reader_id="r1", session_id="s2", external_id="101")["engaged_seconds"] == 5
    # A missing session id is inferred: the reader and the epoch second of its first event.
    assert one_row(result, reader_id="r2", external_id="101")["session_id"] == f"r2:{T0_EPOCH + 5}"
    assert dict(result.dtypes.astype(str)) == {
        k: str(pd.Series(dtype=v).dtype) for k, v in INTERACTION_DTYPES.items()
    }


def test_aliases_of_an_article_are_one_row_with_the_smallest_path(city):
    lines = [
        event("2024-05-01T10:00:05Z", path="/article/101/first-story"),
        event("2024-05-01T10:00:15Z", path=A1),
    ]
    row = run(lines, city).interactions.iloc[0]
    assert row["article_path"] == "/article/101/first-story"
    assert row["pings"] == 2


def test_day_split_at_utc_midnight(city):
    # One page view: windows 23:59:50-59, 00:00:00-09, 00:00:10-19 -> 25 s in all; the first
    # window's 5 s fall on day 1, the two further windows' 10 + 10 on day 2.
    lines = [
        event("2024-05-01T23:59:50Z", "page_view"),
        event("2024-05-01T23:59:55Z"),
        event("2024-05-02T00:00:05Z"),
        event("2024-05-02T00:00:15Z"),
    ]
    result = run(lines, city).interactions.sort_values("day").reset_index(drop=True)
    assert result["day"].tolist() == [day("2024-05-01"), day("2024-05-02")]
    assert result["page_views"].tolist() == [1, 0]
    assert result["pings"].tolist() == [1, 2]
    assert result["engaged_seconds"].tolist() == [5.0, 20.0]
    assert result["ping_dwell_seconds"].tolist() == [10.0, 20.0]


def test_amp_page_views_and_engaged_time(city):
    # amp-1 reads A2 through the AMP cache: view, pings with totalEngagedTime 4, 4, 12.5.
    cache = {
        "host": "democitypaper-example.cdn.ampproject.org",
        "path": "/c/s/democitypaper.example" + A2 + "amp/",
    }
    lines = [
        amp("2024-05-01T10:00:00Z", "amp_page_view", **cache),
        amp("2024-05-01T10:00:10Z", total=4, **cache),
        amp("2024-05-01T10:00:20Z", total=4, **cache),
        amp("2024-05-01T10:00:30Z", total=12.5, **cache),
    ]
    result = run(lines, city)
    assert result.filtered == {}
    row = one_row(result.interactions, reader_id="amp-1")
    assert row["session_id"] == f"amp-1:{T0_EPOCH}"
    assert row["external_id"] == "202"
    assert row["article_path"] == A2
    assert row["page_views"] == 1
    assert row["pings"] == 3
    assert row["engaged_seconds"] == 12.5
    assert row["ping_dwell_seconds"] == 30.0


def test_amp_engaged_time_continues_over_the_lookback_maximum(city):
    context = [amp("2024-05-01T09:59:00Z", "amp_page_view"), amp("2024-05-01T09:59:50Z", total=9)]
    window = [amp("2024-05-01T10:00:00Z", total=9), amp("2024-05-01T10:00:10Z", total=20)]
    row = run(window, city, context).interactions.iloc[0]
    assert row["engaged_seconds"] == 11
    assert row["pings"] == 2
    assert row["page_views"] == 0
    assert row["session_id"] == f"amp-1:{T0_EPOCH - 60}"  # the session started in the lookback


# --- filters --------------------------------------------------------------------------------

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 "
    "Safari/537.36"
)
SPIDER = {IAB: [{"spiderOrRobot": True, "category": "SPIDER_OR_ROBOT", "reason": "FAILED_UA_INCLUDE"}]}
NOT_SPIDER = {IAB: [{"spiderOrRobot": False, "category": "BROWSER", "reason": "PASSED_ALL"}]}


def test_filters_are_counted_by_reason_in_order(city):
    site = with_articles(city, excluded_path_prefixes=("/article/9",))
    t = "2024-05-01T10:00:{:02d}Z"
    late = {"collected": "2024-05-04T10:00:30Z"}  # 72 h 0 min 10 s after 10:00:20
    lines = [
        event(t.format(0), "page_view"),  # kept
        event(t.format(5)),  # kept
        event(t.format(15), **NOT_SPIDER),  # kept: spiderOrRobot false
        # other_event_type: 2 (also bots, no reader: the first reason is the one counted)
        event(t.format(1), "link_click", reader=None, ua=GOOGLEBOT),
        event(t.format(2), "page_activity", path=None, reader="x2"),
        # no_reader_id: 2
        event(t.format(3), reader=None, ua=GOOGLEBOT),
        event(t.format(4), "page_view", reader=None),
        # bot_useragent: 3
        event(t.format(6), ua=GOOGLEBOT, reader="x6", **SPIDER),
        event(t.format(7), ua="python-requests/2.31.0", reader="x7"),
        event(t.format(8), ua=HEADLESS, host="localhost", reader="x8"),
        # iab_spider: 2
        event(t.format(9), reader="x9", **SPIDER),
        event(t.format(10), ua=None, reader="x10", **SPIDER),
        # empty_useragent: 2
        event(t.format(11), ua=None, host="staging.democitypaper.example", reader="x11"),
        event(t.format(12), ua="   ", reader="x12"),
        # host_not_allowed: 3
        event(t.format(13), host="staging.democitypaper.example", reader="x13"),
        event(t.format(14), host="localhost", reader="x14", **late),
        event(t.format(16), host=None, reader="x16"),
        # too_late: 2
        event(t.format(20), reader="x20", **late),
        event(t.format(21), path="/about/", reader="x21", **late),
        # not_an_article: 3
        event(t.format(22), path="/", reader="x22"),
        event(t.format(23), path="/about/", reader="x23"),
        event(t.format(24), path="/article/901/sponsored/", reader="x24"),  # excluded prefix
        # session_too_long: 2, collected more than 3 days after their session's first event
        event("2024-05-04T10:00:31Z", session="s-long", reader="x30"),
        event("2024-05-04T10:00:40Z", "page_view", session="s-long", reader="x30"),
    ]
    # The long session started in the lookback (3 days + 6 s before the first of them).
    result = run(lines, site, [event(t.format(25), session="s-long", reader="x30")])
    assert result.filtered == {
        "other_event_type": 2,
        "no_reader_id": 2,
        "bot_useragent": 3,
        "iab_spider": 2,
        "empty_useragent": 2,
        "host_not_allowed": 3,
        "too_late": 2,
        "session_too_long": 2,
        "not_an_article": 3,
    }
    assert list(result.filtered) == list(FILTER_REASONS)
    assert len(result.interactions) == 1
    row = result.interactions.iloc[0]
    assert row["page_views"] == 1
    assert row["pings"] == 2
    # The kept pings at :05 and :15 fall in the windows 10:00:00-09 and 10:00:10-19.
    assert row["engaged_seconds"] == 15


@pytest.mark.parametrize(
    "useragent",
    [
        GOOGLEBOT,
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "python-requests/2.31.0",
        HEADLESS,
        "curl/8.4.0",
        "Wget/1.21.4",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; YandexSpider/3.0)",
    ],
)
def test_bot_user_agents_are_filtered(city, useragent):
    result = run([event("2024-05-01T10:00:05Z", ua=useragent)], city)
    assert result.filtered == {"bot_useragent": 1}
    assert result.interactions.empty


@pytest.mark.parametrize(
    "useragent",
    [
        UA,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
        "Safari/537.36",
    ],
)
def test_browser_user_agents_are_kept(city, useragent):
    result = run([event("2024-05-01T10:00:05Z", ua=useragent)], city)
    assert result.filtered == {}
    assert len(result.interactions) == 1


def test_a_site_can_add_its_own_bot_pattern(city):
    site = with_events(city, extra_bot_pattern=r"NewsroomChecker/\d")
    lines = [
        event("2024-05-01T10:00:05Z", reader="x", ua="NewsroomChecker/2 (+ops)"),
        event("2024-05-01T10:00:15Z"),
    ]
    assert run(lines, site).filtered == {"bot_useragent": 1}
    assert run(lines, city).filtered == {}


def test_iab_spider_false_is_not_filtered(city):
    lines = [event("2024-05-01T10:00:05Z", **NOT_SPIDER), event("2024-05-01T10:00:15Z", reader="x", **SPIDER)]
    result = run(lines, city)
    assert result.filtered == {"iab_spider": 1}
    assert result.interactions["pings"].tolist() == [1]


def test_empty_user_agents_are_kept_when_the_site_says_so(city):
    lines = [event("2024-05-01T10:00:05Z", ua=None), event("2024-05-01T10:00:15Z", ua="")]
    assert run(lines, city).filtered == {"empty_useragent": 2}
    result = run(lines, with_events(city, drop_empty_useragent=False))
    assert result.filtered == {}
    assert result.interactions["pings"].tolist() == [2]


def test_hosts_not_allowed_and_amp_cache_pages_of_allowed_hosts(city):
    cache_host = "democitypaper-example.cdn.ampproject.org"
    lines = [
        event("2024-05-01T10:00:05Z", reader="x1", host="staging.democitypaper.example"),
        event("2024-05-01T10:00:06Z", reader="x2", host="localhost"),
        event("2024-05-01T10:00:07Z", reader="x3", host="democitypaper.example.evil.example"),
        event(
            "2024-05-01T10:00:08Z",
            reader="x4",
            host=cache_host,
            path="/c/s/staging.democitypaper.example" + A1,
        ),
        event("2024-05-01T10:00:09Z", reader="x5", host=cache_host, path=A1),  # a cache host, no cache path
        # Allowed: the site's hosts, any letter case, and AMP-cache pages of them.
        event("2024-05-01T10:00:15Z", host="www.democitypaper.example"),
        event("2024-05-01T10:00:25Z", host="DemoCityPaper.Example"),
        event("2024-05-01T10:00:35Z", host=cache_host, path="/c/s/democitypaper.example" + A1 + "amp/"),
        event("2024-05-01T10:00:45Z", host=cache_host, path="/v/s/www.democitypaper.example" + A1),
    ]
    result = run(lines, city)
    assert result.filtered == {"host_not_allowed": 5}
    row = result.interactions.iloc[0]
    assert row["pings"] == 4
    assert row["engaged_seconds"] == 10 * (4 - 1) + 5


def test_no_host_filter_when_the_site_allows_every_host(city):
    site = with_events(city, allowed_hosts=())
    lines = [event("2024-05-01T10:00:05Z", host="anything.example"), event("2024-05-01T10:00:15Z", host=None)]
    result = run(lines, site)
    assert result.filtered == {}
    assert result.interactions["pings"].tolist() == [2]


def test_too_late_is_collector_minus_device_time_over_the_site_limit(city):
    lines = [
        event("2024-05-01T10:00:05Z", collected="2024-05-04T10:00:05Z"),  # exactly 72 h: kept
        event("2024-05-01T10:00:15Z", collected="2024-05-04T10:00:15.001Z"),  # 1 ms over
        event("2024-05-01T10:00:25Z", collected="2024-05-01T10:00:20Z"),  # device clock ahead: kept
    ]
    result = run(lines, city)
    assert result.filtered == {"too_late": 1}
    assert result.interactions["pings"].tolist() == [2]
    assert run(lines, with_events(city, max_lateness_hours=1)).filtered == {"too_late": 2}


def test_excluded_prefix_events_are_filtered_as_not_articles(city):
    site = with_articles(city, excluded_path_prefixes=("/article/202/",))
    result = run([event("2024-05-01T10:00:05Z", path=A1), event("2024-05-01T10:00:15Z", path=A2)], site)
    assert result.filtered == {"not_an_article": 1}
    assert result.interactions["external_id"].tolist() == ["101"]


def test_filter_reasons_gives_the_first_reason_and_the_article_ids(city):
    cleaned = clean_window(
        parsed(
            [
                event("2024-05-01T10:00:05Z"),
                event("2024-05-01T10:00:06Z", "link_click", path="/"),
                event("2024-05-01T10:00:07Z", ua=GOOGLEBOT, path=A2),
                event("2024-05-01T10:00:08Z", path="/about/"),
            ],
            "window",
        ),
        parse_objects([]),
        city.events,
    ).events
    reason, ids = filter_reasons(cleaned, city)
    assert reason.tolist()[1:] == ["other_event_type", "bot_useragent", "not_an_article"]
    assert pd.isna(reason.iloc[0])
    assert (ids.iloc[0], ids.iloc[2]) == ("101", "202")
    assert ids.isna().tolist() == [False, True, False, True]


def test_an_empty_reader_id_is_no_reader(city):
    """In JSON an empty field is left out, in TSV it is empty: either way an empty domain_userid is
    no reader, not a reader named ""."""
    result = run([event("2024-05-01T10:00:05Z", reader="", session="")], city)
    assert result.filtered == {"no_reader_id": 1}
    assert result.interactions.empty


def test_no_events_give_an_empty_typed_table(city):
    result = run([], city)
    assert result.interactions.empty
    assert dict(result.interactions.dtypes) == dict(empty_interactions().dtypes)
    assert list(result.interactions.columns) == list(INTERACTION_DTYPES)
    assert result.filtered == {}


def test_only_filtered_events_give_an_empty_typed_table(city):
    result = run([event("2024-05-01T10:00:05Z", ua=GOOGLEBOT)], city)
    assert result.interactions.empty
    assert dict(result.interactions.dtypes) == dict(empty_interactions().dtypes)
    assert result.filtered == {"bot_useragent": 1}


# --- a NUL character never makes one reader's text stand for another's ------------------------


def test_a_nul_in_a_user_agent_or_a_path_changes_only_its_own_event(city):
    """pandas compares strings only up to a NUL: `UA + "\\0 Googlebot"` as the first line once made
    every reader with that browser a bot, and `A1 + "\\0x"` took over A1's readers."""
    readers = [
        [
            event("2024-05-01T10:00:00Z", "page_view", reader=f"r{i}", session=f"s{i}"),
            event("2024-05-01T10:00:05Z", reader=f"r{i}", session=f"s{i}"),
        ]
        for i in range(5)
    ]
    attacker = [
        event("2024-05-01T09:59:00Z", "page_view", reader="evil", session="e1", ua=UA + "\x00 Googlebot"),
        event("2024-05-01T09:59:30Z", "page_view", reader="evil2", session="e2", path=A1 + "\x00x"),
    ]
    result = run(attacker + [line for lines in readers for line in lines], city)
    rows = result.interactions
    assert sorted(rows["reader_id"]) == [f"r{i}" for i in range(5)]
    assert (rows["external_id"] == "101").all() and (rows["article_path"] == A1).all()
    assert (rows["engaged_seconds"] == 5).all()
    # The bot is the attacker's event alone; the other is a path that is no article of the site.
    assert result.filtered == {"bot_useragent": 1, "not_an_article": 1}


def test_map_unique_keeps_strings_that_differ_after_a_nul_apart():
    lengths = map_unique(pd.Series(["/a/\x00x", "/a/", "/a/"], dtype=object), lambda u: u.str.len())
    assert lengths.tolist() == [5, 3, 3]
    with_missing = map_unique(pd.Series(["/a/", None], dtype="string"), lambda u: u.str.len())
    assert with_missing.iloc[0] == 3 and pd.isna(with_missing.iloc[1])


def test_events_past_max_session_days_after_the_session_started_do_not_count(city):
    # Session s9 starts 2024-05-01T10:00:00Z; 3 days later is 2024-05-04T10:00:00Z. The ping 5 s
    # before that counts (its 5 s first heartbeat); the one 5 s after it and the page view
    # after it are filtered as session_too_long, as Snowplow's model (max_session_days 3) does.
    start = event("2024-05-01T10:00:00Z", "page_view", session="s9", path=A2)
    window = [
        event("2024-05-04T09:59:50Z", "page_view", session="s9"),
        event("2024-05-04T09:59:55Z", session="s9"),
        event("2024-05-04T10:00:05Z", session="s9"),
        event("2024-05-04T10:00:06Z", "page_view", session="s9", path=A2),
    ]
    result = run(window, city, [start])
    assert result.filtered == {"session_too_long": 2}
    row = one_row(result.interactions, session_id="s9")
    assert (row["page_views"], row["pings"], row["engaged_seconds"]) == (1, 1, 5.0)
    longer = city.model_copy(update={"events": city.events.model_copy(update={"max_session_days": 4})})
    assert run(window, longer, [start]).filtered == {}


def test_raw_events_stored_before_the_session_start_column_still_sessionize(city):
    # A window ingested by the previous code version has no session_start_tstamp; its
    # interactions are made as they were (no session_too_long), not refused.
    window = [
        event("2024-05-04T09:59:50Z", "page_view", session="s9"),
        event("2024-05-04T09:59:55Z", session="s9"),
    ]
    cleaned = clean_window(parsed(window, "window"), parsed([], "context"), city.events)
    older = cleaned.events.drop(columns=["session_start_tstamp"])
    result = sessionize(older, city)
    assert result.filtered == {}
    row = one_row(result.interactions, session_id="s9")
    assert (row["page_views"], row["pings"], row["engaged_seconds"]) == (1, 1, 5.0)

"""Reading time per (reader, session, article, day) from page views and pings."""

import pandas as pd
import pytest

from article_rec_assets.logic.ingestion import EVENT_COLUMNS, TEXT_COLUMNS
from article_rec_assets.logic.sessions import (
    INTERACTION_DTYPES,
    article_ids_for_paths,
    empty_interactions,
    sessionize,
)
from article_rec_assets.sites import SiteConfig, load_sites

HOST = "democitypaper.example"
A1 = "/article/101/first-story/"
A2 = "/article/202/second-story/"


@pytest.fixture(scope="module")
def city() -> SiteConfig:
    return load_sites()["demo-city-paper"]


@pytest.fixture(scope="module")
def tribune() -> SiteConfig:
    return load_sites()["demo-tribune"]


def event(
    at: str,
    name: str = "page_ping",
    path: str = A1,
    reader: str | None = "r1",
    session: str | None = "s1",
    host: str | None = HOST,
) -> dict:
    return {
        "event_name": name,
        "domain_userid": reader,
        "domain_sessionid": session,
        "page_urlhost": host,
        "page_urlpath": path,
        "dvce_created_tstamp": at,
    }


def events_frame(rows: list[dict]) -> pd.DataFrame:
    """Events shaped like `parse_objects(...).events` (device time = collector time here)."""
    frame = pd.DataFrame(rows)
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    frame["dvce_created_tstamp"] = pd.to_datetime(frame["dvce_created_tstamp"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    frame["collector_tstamp"] = frame["dvce_created_tstamp"]
    for name in TEXT_COLUMNS:
        if name not in frame:
            frame[name] = None
    frame = frame[list(EVENT_COLUMNS)]
    return frame.astype({name: "string" for name in TEXT_COLUMNS})


def one_row(interactions: pd.DataFrame, **keys: str) -> pd.Series:
    mask = pd.Series(True, index=interactions.index)
    for name, value in keys.items():
        mask &= interactions[name] == value
    assert mask.sum() == 1, interactions
    return interactions[mask].iloc[0]


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
        ],
        dtype="string",
    )
    ids = article_ids_for_paths(paths, city)
    assert ids.tolist()[:4] == ["101", "303", "404", "505"]
    assert ids.isna().tolist() == [False] * 4 + [True] * 5
    assert str(ids.dtype) == "string"


def test_excluded_path_prefixes(city):
    site = city.model_copy(
        update={"articles": city.articles.model_copy(update={"excluded_path_prefixes": ("/article/9",)})}
    )
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
    site = city.model_copy(
        update={
            "articles": city.articles.model_copy(update={"path_pattern": r"^/story/(?P<external_id>\d+)$"})
        }
    )
    ids = article_ids_for_paths(pd.Series(["/story/42", A1], dtype="string"), site)
    assert ids.isna().tolist() == [False, True]
    assert ids.iloc[0] == "42"


# --- engaged time ---------------------------------------------------------------------------


def test_engaged_time_is_heartbeat_times_windows_minus_one_plus_five(city):
    # View at 10:00:00, pings at :05, :15, :25 -> windows 10:00:00-09, :10-19, :20-29 -> 3 windows.
    events = events_frame(
        [
            event("2024-05-01T10:00:00Z", "page_view"),
            event("2024-05-01T10:00:05Z"),
            event("2024-05-01T10:00:15Z"),
            event("2024-05-01T10:00:25Z"),
        ]
    )
    result = sessionize(events, city)
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
    assert row["day"] == pd.Timestamp("2024-05-01", tz="UTC")
    assert row["first_seen"] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert row["last_seen"] == pd.Timestamp("2024-05-01T10:00:25Z")
    assert result.dropped == {}


def test_pings_in_the_same_window_count_once_for_engaged_time(city):
    # :05 and :07 share the window 10:00:00-09; a duplicate delivery of :15 adds no window.
    events = events_frame(
        [
            event("2024-05-01T10:00:00Z", "page_view"),
            event("2024-05-01T10:00:05Z"),
            event("2024-05-01T10:00:07Z"),
            event("2024-05-01T10:00:15Z"),
            event("2024-05-01T10:00:15Z"),
        ]
    )
    row = sessionize(events, city).interactions.iloc[0]
    assert row["pings"] == 4
    assert row["engaged_seconds"] == 10 * (2 - 1) + 5 == 15
    assert row["ping_dwell_seconds"] == 40


def test_windows_are_epoch_aligned_not_relative_to_the_view(city):
    # :09 and :11 are 2 s apart but in two heartbeat windows (floor(epoch / 10) differs).
    events = events_frame([event("2024-05-01T10:00:09Z"), event("2024-05-01T10:00:11Z")])
    row = sessionize(events, city).interactions.iloc[0]
    assert row["engaged_seconds"] == 15
    assert row["page_views"] == 0


def test_single_ping_is_the_minimum_visit(city):
    events = events_frame([event("2024-05-01T10:00:00Z", "page_view"), event("2024-05-01T10:00:05Z")])
    row = sessionize(events, city).interactions.iloc[0]
    assert row["engaged_seconds"] == 5
    assert row["ping_dwell_seconds"] == 10


def test_page_view_without_pings_has_zero_engaged_time(city):
    events = events_frame([event("2024-05-01T10:00:00Z", "page_view")])
    row = sessionize(events, city).interactions.iloc[0]
    assert row["pings"] == 0
    assert row["engaged_seconds"] == 0
    assert row["ping_dwell_seconds"] == 0


def test_heartbeat_comes_from_the_site(city):
    site = city.model_copy(update={"events": city.events.model_copy(update={"ping_interval_seconds": 30})})
    # Pings at :05, :15, :25, :35 -> 30 s windows [0, 30) and [30, 60) -> 2 windows.
    events = events_frame([event(f"2024-05-01T10:00:{s:02d}Z") for s in (5, 15, 25, 35)])
    row = sessionize(events, site).interactions.iloc[0]
    assert row["engaged_seconds"] == 30 * (2 - 1) + 5 == 35
    assert row["ping_dwell_seconds"] == 4 * 30 == 120


def test_rows_are_per_reader_session_article(city):
    events = events_frame(
        [
            event("2024-05-01T10:00:05Z", reader="r1", session="s1", path=A1),
            event("2024-05-01T10:00:15Z", reader="r1", session="s1", path=A1 + "?utm=mail"),
            event("2024-05-01T10:01:05Z", reader="r1", session="s1", path=A2),
            event("2024-05-01T11:00:05Z", reader="r1", session="s2", path=A1),
            event("2024-05-01T10:00:05Z", reader="r2", session=None, path=A1),
        ]
    )
    result = sessionize(events, city).interactions
    assert len(result) == 4
    first = one_row(result, reader_id="r1", session_id="s1", external_id="101")
    assert first["pings"] == 2
    assert first["engaged_seconds"] == 15
    assert first["article_path"] == A1  # the smallest of the two aliases
    assert one_row(result, reader_id="r1", session_id="s1", external_id="202")["engaged_seconds"] == 5
    assert one_row(result, reader_id="r1", session_id="s2", external_id="101")["engaged_seconds"] == 5
    # A missing session id becomes "".
    assert one_row(result, reader_id="r2", external_id="101")["session_id"] == ""
    assert dict(result.dtypes.astype(str)) == {
        k: str(pd.Series(dtype=v).dtype) for k, v in INTERACTION_DTYPES.items()
    }


def test_day_split_at_utc_midnight(city):
    events = events_frame(
        [
            event("2024-05-01T23:59:50Z", "page_view"),
            event("2024-05-01T23:59:55Z"),
            event("2024-05-02T00:00:05Z"),
            event("2024-05-02T00:00:15Z"),
        ]
    )
    result = sessionize(events, city).interactions.sort_values("day").reset_index(drop=True)
    assert result["day"].tolist() == [
        pd.Timestamp("2024-05-01", tz="UTC"),
        pd.Timestamp("2024-05-02", tz="UTC"),
    ]
    assert result["page_views"].tolist() == [1, 0]
    assert result["pings"].tolist() == [1, 2]
    # Day 1: one window -> 5 s. Day 2: windows 00:00:00-09 and 00:00:10-19 -> 15 s.
    assert result["engaged_seconds"].tolist() == [5.0, 15.0]
    assert result["ping_dwell_seconds"].tolist() == [10.0, 20.0]


def test_drops_are_counted_by_reason(city):
    events = events_frame(
        [
            event("2024-05-01T10:00:00Z", "page_view"),  # kept
            event("2024-05-01T10:00:05Z"),  # kept
            event("2024-05-01T10:00:06Z", "link_click"),  # other_event_type
            event("2024-05-01T10:00:07Z", "amp_page_ping"),  # other_event_type
            event("2024-05-01T10:00:08Z", reader=None),  # no_reader_id
            event("2024-05-01T10:00:09Z", host="staging.democitypaper.example"),  # host_not_allowed
            event("2024-05-01T10:00:10Z", host=None),  # host_not_allowed
            event("2024-05-01T10:00:11Z", "page_view", path="/"),  # not_an_article
            event("2024-05-01T10:00:12Z", path="/about/"),  # not_an_article
            event("2024-05-01T10:00:13Z", path=None),  # not_an_article
            event("2024-05-01T10:00:14Z", host="www.democitypaper.example"),  # kept (allowed alias)
        ]
    )
    result = sessionize(events, city)
    assert result.dropped == {
        "other_event_type": 2,
        "no_reader_id": 1,
        "host_not_allowed": 2,
        "not_an_article": 3,
    }
    assert len(result.interactions) == 1
    row = result.interactions.iloc[0]
    assert row["page_views"] == 1
    assert row["pings"] == 2
    # The kept pings at :05 and :14 fall in the windows 10:00:00-09 and 10:00:10-19 -> 2 windows.
    assert row["engaged_seconds"] == 15


def test_no_host_filter_when_the_site_allows_every_host(city):
    site = city.model_copy(update={"events": city.events.model_copy(update={"allowed_hosts": ()})})
    events = events_frame(
        [event("2024-05-01T10:00:05Z", host="anything.example"), event("2024-05-01T10:00:15Z", host=None)]
    )
    result = sessionize(events, site)
    assert result.dropped == {}
    assert result.interactions["pings"].tolist() == [2]


def test_excluded_prefix_events_are_dropped_as_not_articles(city):
    site = city.model_copy(
        update={"articles": city.articles.model_copy(update={"excluded_path_prefixes": ("/article/202/",)})}
    )
    events = events_frame([event("2024-05-01T10:00:05Z", path=A1), event("2024-05-01T10:00:15Z", path=A2)])
    result = sessionize(events, site)
    assert result.dropped == {"not_an_article": 1}
    assert result.interactions["external_id"].tolist() == ["101"]


def test_no_events_give_an_empty_typed_table(city):
    events = events_frame([event("2024-05-01T10:00:05Z")]).iloc[:0]
    result = sessionize(events, city)
    assert result.interactions.empty
    assert dict(result.interactions.dtypes) == dict(empty_interactions().dtypes)
    assert result.dropped == {}

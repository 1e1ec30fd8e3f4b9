"""Parsing Snowplow lines (JSON and enriched TSV) from raw S3 objects, and cleaning a window's events.

Every expected value below is worked out by hand from the small inputs built here; the TSV positions
are the contract's (docs/contract.md, section 3), not the module's table, so that a wrong position fails.
"""

from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.parsing import ParsedEvents
from article_rec_assets_tests.ingestion.lines import (
    A1,
    AMP_PAGE_PING,
    AMP_WEB_PAGE,
    CITY_EVENTS,
    amp_line,
    amp_ping,
    eid,
    no_events,
    parse,
    web,
)

# --- clean_window: reading time each ping adds -----------------------------------------------


def increments(window: ParsedEvents, context: ParsedEvents | None = None, settings=None) -> dict[str, float]:
    settings = settings or CITY_EVENTS
    events = clean_window(window, context or no_events(), settings).events
    return dict(zip(events["event_id"], events["engaged_increment_seconds"], strict=True))


def test_pings_in_distinct_heartbeat_windows_add_10_each_after_the_first_5():
    # View at 10:00:00; pings at :05, :17, :25, :58 -> windows 0, 1, 2, 5 (4 windows) -> 10 x 3 + 5.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:00Z", "page_view"),
            web(2, "2024-05-01T10:00:05Z"),
            web(3, "2024-05-01T10:00:17Z"),
            web(4, "2024-05-01T10:00:25Z"),
            web(5, "2024-05-01T10:00:58Z"),
        )
    )
    assert got == {eid(1): 0.0, eid(2): 5.0, eid(3): 10.0, eid(4): 10.0, eid(5): 10.0}
    assert sum(got.values()) == 10 * (4 - 1) + 5 == 35


def test_two_pings_in_the_same_window_add_10_once():
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:05Z"),
            web(2, "2024-05-01T10:00:11Z"),
            web(3, "2024-05-01T10:00:19.999Z"),  # same window as :11
        )
    )
    assert sorted(got.values()) == [0.0, 5.0, 10.0]
    assert sum(got.values()) == 15


def test_heartbeat_windows_are_epoch_aligned_and_per_page_view():
    # :09 and :11 are 2 s apart but in two windows; pv-2 is another page view of the same page.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:09Z"),
            web(2, "2024-05-01T10:00:11Z"),
            web(3, "2024-05-01T10:00:12Z", pv="pv-2"),
        )
    )
    assert got == {eid(1): 5.0, eid(2): 10.0, eid(3): 5.0}


def test_without_a_page_view_id_a_page_view_is_the_reader_session_and_page():
    # No web_page context: pings of the same reader, session and (normalized) page are one page view.
    got = increments(
        parse(
            web(1, "2024-05-01T10:00:05Z", pv=None),
            web(2, "2024-05-01T10:00:15Z", pv=None, page_urlpath=A1 + "?utm=mail"),
            web(3, "2024-05-01T10:00:25Z", pv=None, domain_sessionid="session-2"),
            web(4, "2024-05-01T10:00:35Z", pv=None, page_urlpath="/article/2/b/"),
        )
    )
    assert got == {eid(1): 5.0, eid(2): 10.0, eid(3): 5.0, eid(4): 5.0}


def test_a_page_view_split_between_lookback_and_window_is_not_counted_twice():
    # Windows a = 10:00:0x, b = :1x, c = :2x, d = :3x. Context: view, pings in a and b (5 + 10).
    # Window: pings in b, c, d -> b is known, so 10 + 10. Total 35 = 10 x (4 - 1) + 5.
    context = parse(
        web(1, "2024-05-01T10:00:00Z", "page_view"),
        web(2, "2024-05-01T10:00:05Z"),
        web(3, "2024-05-01T10:00:15Z"),
        key="context",
    )
    window = parse(
        web(4, "2024-05-01T10:00:19Z"),
        web(5, "2024-05-01T10:00:25Z"),
        web(6, "2024-05-01T10:00:35Z"),
        web(7, "2024-05-01T10:00:36Z"),
    )
    got = increments(window, context)
    assert got == {eid(4): 0.0, eid(5): 10.0, eid(6): 10.0, eid(7): 0.0}
    assert sum(got.values()) == 20
    assert sum(increments(context).values()) + 20 == 10 * (4 - 1) + 5


def test_a_ping_delivered_again_adds_nothing():
    context = parse(web(1, "2024-05-01T10:00:05Z"), key="context")
    window = parse(web(1, "2024-05-01T10:00:05Z"), web(2, "2024-05-01T10:00:15Z"))
    assert increments(window, context) == {eid(2): 10.0}


def test_first_ping_in_the_window_after_a_lookback_page_view_is_the_minimum_visit():
    context = parse(web(1, "2024-05-01T10:00:00Z", "page_view"), key="context")
    window = parse(web(2, "2024-05-01T10:00:05Z"), web(3, "2024-05-01T10:00:15Z"))
    assert increments(window, context) == {eid(2): 5.0, eid(3): 10.0}


def test_heartbeat_comes_from_the_site(city):
    settings = city.events.model_copy(update={"ping_interval_seconds": 30})
    # Pings at :05, :15, :25, :35 -> 30 s windows [0, 30) and [30, 60) -> 30 x 1 + 5.
    window = parse(*[web(i, f"2024-05-01T10:00:{s:02d}Z") for i, s in enumerate((5, 15, 25, 35), start=1)])
    got = increments(window, settings=settings)
    assert got == {eid(1): 5.0, eid(2): 0.0, eid(3): 0.0, eid(4): 30.0}


def test_amp_pings_add_the_rise_of_the_cumulative_engaged_time():
    got = increments(
        parse(
            amp_line(1, "2024-05-01T10:00:00Z", **{AMP_WEB_PAGE: [{"ampPageViewId": "apv-1"}]}),
            amp_ping(2, "2024-05-01T10:00:10Z", 4),
            amp_ping(3, "2024-05-01T10:00:20Z", 4),  # idle: no rise
            amp_ping(4, "2024-05-01T10:00:30Z", 11.5),
            amp_ping(5, "2024-05-01T10:00:40Z", None),  # no engaged time: adds nothing
            amp_ping(6, "2024-05-01T10:00:50Z", 3, pv="apv-2"),  # another page view
        )
    )
    assert got == {eid(1): 0.0, eid(2): 4.0, eid(3): 0.0, eid(4): 7.5, eid(5): 0.0, eid(6): 3.0}


def test_amp_pings_split_between_lookback_and_window_rise_over_the_lookback_maximum():
    context = parse(
        amp_ping(1, "2024-05-01T09:59:10Z", 4),
        amp_ping(2, "2024-05-01T09:59:20Z", 9),
        key="context",
    )
    window = parse(
        amp_ping(3, "2024-05-01T10:00:00Z", 9),  # no rise over 9
        amp_ping(4, "2024-05-01T10:00:10Z", 15),  # +6
        amp_ping(5, "2024-05-01T10:00:20Z", 12),  # below the maximum: +0
        amp_ping(6, "2024-05-01T10:00:30Z", 21.5),  # +6.5
    )
    got = increments(window, context)
    assert got == {eid(3): 0.0, eid(4): 6.0, eid(5): 0.0, eid(6): 6.5}
    assert sum(got.values()) == 21.5 - 9


def test_amp_ping_delivered_late_below_the_lookback_maximum_adds_nothing():
    context = parse(amp_ping(1, "2024-05-01T09:59:30Z", 20), key="context")
    window = parse(amp_ping(2, "2024-05-01T09:59:10Z", 8))
    assert increments(window, context) == {eid(2): 0.0}


# --- Snowplow's linkage: a ping belongs to its page view by page view id and session ------------


def test_a_ping_of_another_session_adds_nothing_to_the_page_view():
    # pv-1 in session s1: pings at :05, :15 -> 5 + 10. The same page view id sent under session s2
    # (a restored tab, a copied URL with its page view id) is not s1's page view: Snowplow's model
    # groups pings by (page view id, domain_sessionid).
    window = parse(
        web(1, "2024-05-01T10:00:00Z", "page_view", domain_sessionid="s1"),
        web(2, "2024-05-01T10:00:05Z", domain_sessionid="s1"),
        web(3, "2024-05-01T10:00:15Z", domain_sessionid="s1"),
        web(4, "2024-05-01T10:00:25Z", domain_sessionid="s2"),
        web(5, "2024-05-01T10:00:35Z", domain_sessionid="s2"),
    )
    events = clean_window(window, no_events(), CITY_EVENTS).events.set_index("event_id")
    got = events["engaged_increment_seconds"].to_dict()
    assert got == {eid(1): 0.0, eid(2): 5.0, eid(3): 10.0, eid(4): 5.0, eid(5): 10.0}
    by_session = events.groupby("session_id")["engaged_increment_seconds"].sum().to_dict()
    assert by_session == {"s1": 15.0, "s2": 15.0}  # s1's page view keeps exactly 5 + 10


def test_a_ping_of_another_session_in_the_lookback_does_not_make_the_window_s_first_ping_a_repeat():
    # The lookback holds a ping of pv-1 under s2 only; s1's first ping in the window is its first.
    context = parse(web(1, "2024-05-01T10:00:05Z", domain_sessionid="s2"), key="context")
    window = parse(web(2, "2024-05-01T10:00:06Z", domain_sessionid="s1"))
    assert increments(window, context) == {eid(2): 5.0}


# --- the context rows that are cleaned: those sharing a reader, session or page view ----------


def test_context_rows_of_other_readers_count_where_they_share_the_page_view_or_session():
    # The window cleans only context rows that share something with its own events. An AMP page
    # view is keyed by its id alone, so a context ping of it from another AMP client still counts
    # (40 - 30, not 40); a web ping under the same session id from another reader id makes the
    # window's ping of that page view a repeat of its heartbeat window (0, not 5).
    amp_context = amp_line(
        1,
        "2024-05-01T09:00:30Z",
        client="amp-9",
        name="amp_page_ping",
        **{AMP_WEB_PAGE: [{"ampPageViewId": "apv-1"}], AMP_PAGE_PING: {"totalEngagedTime": 30}},
    )
    web_context = web(2, "2024-05-01T09:59:55Z", domain_userid="reader-9")
    unrelated = web(3, "2024-05-01T09:59:55Z", pv="pv-9", domain_userid="reader-9", domain_sessionid="s-9")
    window = parse(amp_ping(4, "2024-05-01T10:00:30Z", 40), web(5, "2024-05-01T09:59:59Z"))
    got = increments(window, parse(amp_context, web_context, unrelated, key="context"))
    assert got == {eid(4): 10.0, eid(5): 0.0}
    assert increments(window) == {eid(4): 40.0, eid(5): 5.0}

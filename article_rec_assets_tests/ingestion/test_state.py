"""What a window hands on to later windows (ingestion/state.py), through windows ingested in order
as the asset does: each window's deliveries and state stored (through Parquet) and read by the
next ones. Expected seconds are worked out by hand; the lookback is 6 hours, so windows 8 hours
or days apart see each other only through the carried state."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from article_rec_assets.ingestion.cleaning import CleanWindow, _shares_someone, clean_window
from article_rec_assets.ingestion.state import carried_state, page_view_keys, text_keys
from article_rec_assets.ingestion.window_events import delivered_events, ingest_events, state_windows
from article_rec_assets.settings.sites import EventSettings
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_assets_tests.ingestion.lines import (
    CITY_EVENTS,
    amp_line,
    amp_ping,
    eid,
    parse,
    web,
)


def _stored(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pd.read_parquet(io.BytesIO(buffer.getvalue()))


def ingest_in_order(
    lines: list[bytes], starts: list[datetime], settings: EventSettings = CITY_EVENTS, carry: bool = True
) -> dict[datetime, CleanWindow]:
    """Each line goes to the hour folder of its collector time; the windows run oldest first,
    each with the stored outputs of the ones before it (none of the state when not `carry`)."""
    folders: dict[datetime, list[bytes]] = {}
    for line in lines:
        at = pd.Timestamp(pd.read_json(io.BytesIO(line), lines=True)["collector_tstamp"][0])
        hour = at.floor("h").to_pydatetime().replace(tzinfo=UTC)
        folders.setdefault(hour, []).append(line)

    def objects_in(start: datetime, end: datetime):
        for hour in sorted(h for h in folders if start <= h < end):
            yield f"good/{hour:%Y/%m/%d/%H}/part-0", b"\n".join(folders[hour])

    delivered: dict[datetime, pd.DataFrame] = {}
    states: dict[datetime, pd.DataFrame] = {}
    results = {}
    for start in sorted(starts):
        oldest = start - timedelta(hours=WINDOW_HOURS * state_windows(settings))
        read, cleaned = ingest_events(
            objects_in,
            start,
            start + timedelta(hours=WINDOW_HOURS),
            settings,
            stored=dict(delivered),
            earlier_states=[states[s] for s in sorted(states) if s >= oldest] if carry else [],
        )
        delivered[start] = _stored(delivered_events(read.window))
        states[start] = _stored(cleaned.state)
        results[start] = cleaned
    return results


def seconds(results: dict[datetime, CleanWindow]) -> dict[str, float]:
    events = pd.concat([r.events for r in results.values()])
    return dict(zip(events["event_id"], events["engaged_increment_seconds"], strict=True))


def at(day: int, hour: int) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


def test_a_ping_eight_hours_after_its_page_views_last_adds_a_heartbeat_not_the_first_minimum() -> None:
    lines = [
        web(1, "2024-05-01T10:00:00Z", "page_view"),
        web(2, "2024-05-01T10:00:05Z"),  # first heartbeat: 5
        web(3, "2024-05-01T10:00:15Z"),  # 10
        web(4, "2024-05-01T18:00:05Z"),  # 8 h later, beyond the 6 h lookback: 10, not 5 again
    ]
    windows = [at(1, 10), at(1, 18)]
    assert seconds(ingest_in_order(lines, windows)) == {eid(1): 0.0, eid(2): 5.0, eid(3): 10.0, eid(4): 10.0}
    # Without the carried state the late ping looks like a new page view's first (the old defect).
    assert seconds(ingest_in_order(lines, windows, carry=False))[eid(4)] == 5.0


def test_a_ping_of_another_session_days_later_still_starts_its_own_page_view() -> None:
    lines = [
        web(1, "2024-05-01T10:00:05Z"),
        web(2, "2024-05-02T10:00:05Z", domain_sessionid="session-2"),  # same page view id, session 2
    ]
    assert seconds(ingest_in_order(lines, [at(1, 10), at(2, 10)])) == {eid(1): 5.0, eid(2): 5.0}


def test_an_amp_ping_a_day_later_adds_only_the_rise_of_its_page_views_total() -> None:
    lines = [
        amp_line(1, "2024-05-01T10:00:00Z"),
        amp_ping(2, "2024-05-01T10:00:30Z", 30),  # 30
        amp_ping(3, "2024-05-01T20:00:30Z", 40),  # 10 h later: 40 - 30
        amp_ping(4, "2024-05-02T12:00:30Z", 35),  # lower than what was counted: 0
        amp_ping(5, "2024-05-02T12:01:00Z", 55),  # 55 - 40
    ]
    got = seconds(ingest_in_order(lines, [at(1, 10), at(1, 20), at(2, 12)]))
    assert got == {eid(1): 0.0, eid(2): 30.0, eid(3): 10.0, eid(4): 0.0, eid(5): 15.0}
    assert seconds(ingest_in_order(lines, [at(1, 10), at(1, 20), at(2, 12)], carry=False))[eid(3)] == 40.0


def test_a_session_s_start_travels_with_it_across_days_for_max_session_days() -> None:
    # One session, active once a day; max_session_days 3: its event 3 days and 2 hours after the
    # start is past the limit, though no window's lookback reaches back to the start.
    lines = [
        web(1, "2024-05-01T10:00:00Z", "page_view"),
        web(2, "2024-05-02T10:00:00Z", "page_view", pv="pv-2"),
        web(3, "2024-05-03T10:00:00Z", "page_view", pv="pv-3"),
        web(4, "2024-05-04T12:00:00Z", "page_view", pv="pv-4"),
    ]
    windows = [at(1, 10), at(2, 10), at(3, 10), at(4, 12)]
    results = ingest_in_order(lines, windows)
    start = pd.Timestamp("2024-05-01T10:00:00Z")
    for window in windows:
        assert results[window].events["session_start_tstamp"].tolist() == [start]
    assert (
        not ingest_in_order(lines, windows, carry=False)[at(4, 12)]
        .events["session_start_tstamp"]
        .eq(start)
        .any()
    )


def test_state_rows_name_each_session_and_pinged_page_view_of_the_window_once() -> None:
    lines = [
        web(1, "2024-05-01T10:00:00Z", "page_view"),
        web(2, "2024-05-01T10:00:05Z"),
        web(3, "2024-05-01T10:00:15Z"),
        web(4, "2024-05-01T10:00:25Z", domain_sessionid="session-2"),
        amp_ping(5, "2024-05-01T10:00:30Z", 30),
    ]
    state = ingest_in_order(lines, [at(1, 10)])[at(1, 10)].state
    assert state["kind"].value_counts().to_dict() == {"page_view": 3, "session": 3}  # 2 web, 1 AMP
    assert not state.duplicated(["kind", "key"]).any()
    amp = state[(state["kind"] == "page_view") & state["amp_engaged_seconds"].notna()]
    assert amp["amp_engaged_seconds"].tolist() == [30.0]
    carried = carried_state([state, state])  # a window read twice changes nothing
    assert len(carried.page_views) == 3 and len(carried.session_starts) == 3


def test_keys_tell_apart_strings_that_differ_after_a_nul_byte_and_missing_from_empty() -> None:
    keys = text_keys("t", pd.Series(["a\0x", "a\0y", "a", "", None], dtype=object))
    assert len(set(keys.tolist())) == 5
    frame = pd.DataFrame(
        {
            "event_name": ["page_ping", "page_ping", "amp_page_ping"],
            "page_view_id": ["pv", "pv", "pv"],
            "session_id": ["s1", "s2", "s1"],
            "reader_id": ["r", "r", "r"],
            "page_path": ["/a/", "/a/", "/a/"],
        }
    )
    assert len(np.unique(page_view_keys(frame))) == 3  # web by (page view, session); AMP by page view


def test_the_highest_amp_total_handed_on_counts_the_context_s_pings_too() -> None:
    # The context (a window whose own state is missing, read from the bucket) saw total 50; the
    # window's ping says 40 and adds nothing; the state hands on 50, not 40.
    context = parse(amp_ping(1, "2024-05-01T09:00:30Z", 50), key="context")
    window = parse(amp_ping(2, "2024-05-01T10:00:30Z", 40))
    cleaned = clean_window(window, context, CITY_EVENTS)
    assert cleaned.events["engaged_increment_seconds"].tolist() == [0.0]
    views = cleaned.state[cleaned.state["kind"] == "page_view"]
    assert views["amp_engaged_seconds"].tolist() == [50.0]


def test_the_context_filter_tells_apart_ids_that_differ_after_a_nul_byte() -> None:
    # (Parsed JSON turns NUL into U+FFFD; other sources may not.) pandas' unique() stops at a NUL
    # and would make "p\0b" look absent from the window's page views.
    def frame(page_views: list[str]) -> pd.DataFrame:
        n = len(page_views)
        return pd.DataFrame(
            {
                "domain_userid": [None] * n,
                "amp_client_id": [f"client-{i}-{len(page_views)}" for i in range(n)],
                "domain_sessionid": [None] * n,
                "page_view_id": page_views,
            },
            dtype=object,
        )

    context, own = frame(["p\0b", "p\0c"]), frame(["p\0a", "p\0b", "p"])
    assert _shares_someone(context, own).tolist() == [True, False]


def test_an_event_from_1969_in_a_windows_folder_is_set_aside_and_never_starts_its_session() -> None:
    """A zeroed clock: the 1969 event sits in the window's own hour folder, in a live session.
    Accepted, it became the session's start: the session's reading was dropped as too long, here
    and in every later window the start was carried to."""
    window, later = at(1, 10), at(1, 18)
    folders = {
        window: [
            web(1, "2024-05-01T10:00:00Z", "page_view"),
            web(2, "1970-01-01T00:00:00Z"),  # same session and page view as the others
            web(3, "2024-05-01T10:00:05Z"),
            web(4, "2024-05-01T10:00:15Z"),
        ],
        later: [web(5, "2024-05-01T18:00:05Z")],
    }

    def objects_in(start: datetime, end: datetime):
        for hour in sorted(h for h in folders if start <= h < end):
            yield f"good/{hour:%Y/%m/%d/%H}/part-0", b"\n".join(folders[hour])

    read, first = ingest_events(objects_in, window, window + timedelta(hours=WINDOW_HOURS), CITY_EVENTS)
    assert read.window.rejects[["line_number", "reason"]].values.tolist() == [[2, "timestamp_in_past"]]
    sessions = first.state[first.state["kind"] == "session"]
    assert sessions["session_start_tstamp"].tolist() == [pd.Timestamp("2024-05-01T10:00:00Z")]
    _, second = ingest_events(
        objects_in,
        later,
        later + timedelta(hours=WINDOW_HOURS),
        CITY_EVENTS,
        earlier_states=[_stored(first.state)],
    )
    got = dict(zip(first.events["event_id"], first.events["engaged_increment_seconds"], strict=True))
    got |= dict(zip(second.events["event_id"], second.events["engaged_increment_seconds"], strict=True))
    assert got == {eid(1): 0.0, eid(3): 5.0, eid(4): 10.0, eid(5): 10.0}

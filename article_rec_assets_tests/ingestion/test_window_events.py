"""A window's own hour folders and its context, as the bucket delivers them: an event in two hour
folders is counted once, by the first window that accepted it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.window_events import context_spans, read_window_events
from article_rec_assets_tests.ingestion.lines import CITY_EVENTS, json_line


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, 1, hour, minute, tzinfo=UTC)


def bucket(folders: dict[int, list[bytes]]):
    """objects_in over hour folders of 2024-05-01 (hour -> lines of one object)."""

    def objects_in(start: datetime, end: datetime):
        hour = start
        while hour < end:
            if hour.hour in folders:
                yield f"enriched/good/2024/05/01/{hour.hour:02d}/part-0", b"\n".join(folders[hour.hour])
            hour += timedelta(hours=1)

    return objects_in


def json_id(line: bytes) -> str:
    return orjson.loads(line)["event_id"]


def counted(objects_in, start: datetime) -> list[str]:
    read = read_window_events(objects_in, start, start + timedelta(hours=2), CITY_EVENTS)
    return sorted(clean_window(read.window, read.context, CITY_EVENTS).events["event_id"])


def test_context_spans_follow_the_windows_that_owned_the_folders() -> None:
    assert context_spans(at(10), 6) == [(at(4), at(6), at(6)), (at(6), at(8), at(8)), (at(8), at(10), at(10))]
    assert context_spans(at(10), 3) == [(at(7), at(8), at(8)), (at(8), at(10), at(10))]
    assert context_spans(at(10), 0) == []


def test_an_event_in_two_hour_folders_is_counted_by_one_window_only() -> None:
    # Collected at 10:30 and delivered into folders 09 and 10 (a loader retry). The window
    # [08, 10) accepts it (collected up to 60 minutes past its end), so [10, 12) must not.
    late = json_line(1, collector_tstamp="2024-05-01T10:30:00Z")
    # Collected at 10:30 but in folder 07: its window [06, 08) quarantined it (too far in the
    # future for it), so the copy in folder 10 is the one that counts.
    early_folder = json_line(2, collector_tstamp="2024-05-01T10:30:00Z")
    plain = json_line(3, collector_tstamp="2024-05-01T10:40:00Z")
    objects_in = bucket({7: [early_folder], 9: [late], 10: [late, early_folder, plain]})
    first, second = counted(objects_in, at(8)), counted(objects_in, at(10))
    owner = counted(objects_in, at(6))
    assert first == [late_id := json_id(late)]
    assert second == sorted([json_id(early_folder), json_id(plain)])
    assert owner == [] and late_id not in second


def test_a_windows_objects_past_the_sites_window_bound_are_quarantined_and_counted() -> None:
    """Hour folders whose objects together inflate past `max_window_megabytes` (1 MB here): the
    first is read, the next is cut at the bound, and its lines past it are one quarantined line."""
    padding = b"\n" * (700 << 10)  # each object: 700 KB of blank lines, then three events
    folders = {
        h: [json_line(10 * h + n, collector_tstamp=f"2024-05-01T{h:02d}:10:00Z") for n in (1, 2, 3)]
        for h in (10, 11)
    }
    objects_in = bucket({h: [padding, *lines] for h, lines in folders.items()})
    bounded = CITY_EVENTS.model_copy(update={"max_window_megabytes": 1})
    read = read_window_events(objects_in, at(10), at(12), bounded)
    assert sorted(read.window.events["event_id"]) == sorted(json_id(line) for line in folders[10])
    assert read.window.reject_counts == {"object_too_large": 1}
    assert "events.max_window_megabytes" in read.window.rejects["excerpt"].iloc[0]
    unbounded = read_window_events(objects_in, at(10), at(12), CITY_EVENTS)
    assert len(unbounded.window.events) == 6 and unbounded.window.rejects.empty

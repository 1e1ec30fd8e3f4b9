"""A run's windows ingested oldest first: a range gives each window the tables it gets alone, with
what the windows before it handed on read from memory; only the windows before the range are
asked of storage."""

from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from article_rec_assets.ingestion.consecutive import (
    EventReaders,
    Stored,
    WindowFigures,
    ingest_consecutive_windows,
)
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import load_sites
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_assets_tests.support import DEMO_END

SITE = load_sites()["demo-tribune"]
STEP = timedelta(hours=WINDOW_HOURS)
STARTS = [DEMO_END - STEP * i for i in range(6, 0, -1)]


def readers(data_dir: Path) -> EventReaders:
    bucket = EventBucket(root_dir=str(data_dir))
    return EventReaders(
        window_objects=partial(bucket.window_objects, SITE),
        folder_keys=partial(bucket.folder_keys, SITE),
        folder_objects=partial(bucket.folder_objects, SITE),
    )


class Storage:
    """What earlier windows stored, recording which windows were asked for."""

    def __init__(self, windows: list) -> None:
        self.by_start = {w.start: w for w in windows}
        self.asked: set[datetime] = set()
        self.times_asked: dict[tuple[str, datetime], int] = {}

    def _get(self, what: str, start: datetime):
        self.asked.add(start)
        self.times_asked[what, start] = self.times_asked.get((what, start), 0) + 1
        window = self.by_start.get(start)
        if window is None:
            return None
        return window.figures if what == "figures" else getattr(window, what)

    def stored(self) -> Stored:
        return Stored(
            deliveries=partial(self._get, "deliveries"),
            state=partial(self._get, "state"),
            figures=partial(self._get, "figures"),
        )


NOTHING = Stored(deliveries=lambda _: None, state=lambda _: None, figures=lambda _: None)


def test_a_range_gives_each_window_what_it_gets_after_the_windows_before_it(demo_data_dir: Path) -> None:
    events = SITE.events
    whole = list(ingest_consecutive_windows(STARTS, events, readers(demo_data_dir), NOTHING))
    assert [w.start for w in whole] == STARTS
    # The last three windows again, as a later run: the first three come from "storage".
    storage = Storage(whole[:3])
    later = list(ingest_consecutive_windows(STARTS[3:], events, readers(demo_data_dir), storage.stored()))
    for alone, ranged in zip(later, whole[3:], strict=True):
        for table in ("events", "rejects", "deliveries", "state"):
            pd.testing.assert_frame_equal(getattr(alone, table), getattr(ranged, table), obj=table)
        assert alone.volume == ranged.volume and alone.freshness == ranged.freshness
    # Storage is asked only for windows before the run's first, each once.
    assert storage.asked and max(storage.asked) < STARTS[3]
    assert all(count == 1 for count in storage.times_asked.values()), storage.times_asked
    # The later windows' context came from the earlier windows, not from the bucket again.
    assert later[1].source_figures["context_windows_from_bucket"] == 0


def test_the_checks_compare_a_window_with_the_figures_of_earlier_days(demo_data_dir: Path) -> None:
    start = STARTS[-1]
    day_before = {
        start - timedelta(days=1): WindowFigures(events=1000, source="snowplow", newest_event_at=None)
    }
    stored = Stored(deliveries=lambda _: None, state=lambda _: None, figures=day_before.get)
    (window,) = ingest_consecutive_windows([start], SITE.events, readers(demo_data_dir), stored)
    assert window.same_window_earlier_days == [1000]
    # GA4's figures are not compared with a Snowplow window's.
    day_before[start - timedelta(days=1)] = WindowFigures(events=1000, source="ga4", newest_event_at=None)
    (window,) = ingest_consecutive_windows([start], SITE.events, readers(demo_data_dir), stored)
    assert window.same_window_earlier_days == []


def test_windows_of_a_run_must_be_consecutive(demo_data_dir: Path) -> None:
    with pytest.raises(ValueError, match="consecutive"):
        list(ingest_consecutive_windows([STARTS[0], STARTS[2]], SITE.events, readers(demo_data_dir), NOTHING))

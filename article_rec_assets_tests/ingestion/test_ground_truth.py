"""Ingestion window by window over generated days, against the generator's exact ground truth:
every dirty case is counted where it belongs, and reading time adds up across windows with
nothing lost or counted twice."""

import json
from collections import Counter
from datetime import timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.ingestion.window_events import delivered_events, ingest_events, state_windows
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import load_sites
from article_rec_assets.settings.windows import WINDOW_HOURS
from article_rec_assets_tests.support import DEMO_DAYS, DEMO_END

SITE = load_sites()["demo-city-paper"]


@pytest.fixture(scope="module")
def windows(demo_data_dir: Path) -> dict:
    """Each 2-hour window ingested as the asset does it, oldest first: its folders, its context
    from the earlier windows' deliveries, and what they handed on."""
    bucket = EventBucket(root_dir=str(demo_data_dir))
    settings = SITE.events
    totals: dict = {"rejects": Counter(), "duplicates": Counter(), "filtered": Counter(), "events": Counter()}
    interactions, emitted = [], []
    delivered: dict = {}
    states: list[pd.DataFrame] = []
    start = DEMO_END - timedelta(days=DEMO_DAYS)
    for i in range(DEMO_DAYS * 24 // WINDOW_HOURS):
        window_start = start + timedelta(hours=WINDOW_HOURS * i)
        read, cleaned = ingest_events(
            partial(bucket.window_objects, SITE),
            window_start,
            window_start + timedelta(hours=WINDOW_HOURS),
            settings,
            stored=dict(delivered),
            earlier_states=states[-state_windows(settings) :],
        )
        delivered[window_start] = delivered_events(read.window)
        states.append(cleaned.state)
        window = read.window
        result = sessionize(cleaned.events, SITE)
        totals["rejects"].update(window.rejects["reason"].tolist())
        totals["duplicates"].update(cleaned.duplicates)
        totals["filtered"].update(result.filtered)
        totals["events"].update(cleaned.events["event_name"].tolist())
        interactions.append(result.interactions)
        emitted.append(cleaned.events["event_id"])
    totals["interactions"] = pd.concat(interactions, ignore_index=True)
    totals["event_ids"] = pd.concat(emitted, ignore_index=True)
    totals["truth"] = json.loads((demo_data_dir / SITE.name / "ground_truth.json").read_text())
    totals["page_views"] = pd.read_parquet(demo_data_dir / SITE.name / "page_views_truth.parquet")
    return totals


def test_every_unusable_line_is_quarantined_with_its_reason(windows: dict) -> None:
    truth = windows["truth"]
    expected = Counter(truth["quarantined"]["by_reason"])
    expected["truncated_gzip"] = len(truth["truncated_objects"])
    assert windows["rejects"] == expected


def test_each_event_is_emitted_once_by_the_window_that_received_it(windows: dict) -> None:
    truth = windows["truth"]
    assert windows["event_ids"].is_unique
    assert dict(windows["events"]) == truth["distinct_events_per_event_name"]
    assert sum(windows["duplicates"].values()) == truth["duplicates"]["extra_copies"]
    # Copies in a later hour folder of another window are recognised through the context.
    assert windows["duplicates"]["delivered_in_earlier_window"] > 0


def test_bots_and_internal_hosts_are_filtered_and_counted(windows: dict) -> None:
    truth, filtered = windows["truth"], windows["filtered"]
    assert filtered["bot_useragent"] == truth["bots"]["ua"]
    assert filtered["iab_spider"] == truth["bots"]["iab"]
    assert filtered["empty_useragent"] == truth["bots"]["empty_ua"]
    assert filtered["host_not_allowed"] == sum(truth["staging"].values())
    assert filtered.get("too_late", 0) == truth["late"]["too_late_events"]


def test_reading_time_adds_up_across_windows(windows: dict) -> None:
    """Page views whose pings land in two windows (late files, windows' edges) are counted once:
    the windows' engaged seconds add up to Snowplow's web model (and AMP's engaged time) applied
    to each whole page view."""
    page_views = windows["page_views"]
    interactions = windows["interactions"]
    assert interactions["engaged_seconds"].sum() == page_views["engaged_seconds"].sum()
    per_reader_article = interactions.groupby(["reader_id", "external_id"])["engaged_seconds"].sum()
    expected = page_views.groupby(["reader_id", "external_id"])["engaged_seconds"].sum()
    expected = expected[expected > 0]
    pd.testing.assert_series_equal(
        per_reader_article[per_reader_article > 0].sort_index(),
        expected.astype("float64").sort_index(),
        check_names=False,
        check_index_type=False,
    )
    amp_readers = set(page_views.loc[page_views["is_amp"], "reader_id"])
    assert amp_readers and amp_readers <= set(interactions["reader_id"])

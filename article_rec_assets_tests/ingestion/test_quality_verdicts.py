"""Malformed-share, volume and freshness verdicts on one window."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from article_rec_assets.ingestion.quality_verdicts import (
    freshness_verdict,
    latest_time,
    malformed_verdicts,
    volume_verdict,
)
from article_rec_assets.settings.sites import load_sites

END = datetime(2026, 3, 4, 12, tzinfo=UTC)


def test_volume_like_the_same_window_on_earlier_days_passes() -> None:
    verdict = volume_verdict(900, [1000, 1100, 950, 1200, 990, 1010, 1050], warn_fraction=0.3)
    assert verdict.passed and not verdict.blocking
    assert "of the median 1,010" in verdict.description


def test_a_window_below_the_share_of_the_median_warns_without_blocking() -> None:
    verdict = volume_verdict(250, [1000, 1100, 950], warn_fraction=0.3)
    assert not verdict.passed and not verdict.blocking
    assert "below 30%" in verdict.description


def test_an_empty_window_where_traffic_was_expected_blocks() -> None:
    verdict = volume_verdict(0, [1000, 0, 950], warn_fraction=0.3)
    assert not verdict.passed and verdict.blocking
    assert "no events where 950 were expected" in verdict.description


def test_without_history_or_traffic_an_empty_window_is_not_an_alarm() -> None:
    assert volume_verdict(0, [], warn_fraction=0.3).passed
    assert volume_verdict(0, [0, 0], warn_fraction=0.3).passed


def test_freshness_fails_when_the_newest_event_is_older_than_the_limit() -> None:
    limit = timedelta(hours=6)
    assert freshness_verdict(END - timedelta(minutes=3), END, limit).passed
    stale = freshness_verdict(END - timedelta(hours=7), END, limit)
    assert not stale.passed and "7.0 h before the window's end" in stale.description
    none = freshness_verdict(None, END, limit)
    assert not none.passed and "no events at all" in none.description


def test_the_latest_of_earlier_windows_newest_events() -> None:
    assert latest_time(["2026-03-04 09:58:00+00:00", "2026-03-04 11:59:30+00:00", ""]) == pd.Timestamp(
        "2026-03-04 11:59:30", tz="UTC"
    )
    assert latest_time([]) is None


def test_one_bad_line_among_nine_does_not_block_a_window_below_the_minimum_count():
    settings = load_sites()["demo-city-paper"].events  # warn 1 %, block 10 %, from 100 lines
    assert settings.malformed_min_lines == 100
    warn, block = malformed_verdicts(9, 1, settings)
    assert (warn.passed, block.passed) == (True, True)
    assert "1 of only 9 lines unusable" in block.description and "100 lines" in block.description
    # From the minimum on, the share is judged: 11 of 100 blocks, 1 of 100 neither warns nor blocks.
    warn, block = malformed_verdicts(100, 11, settings)
    assert (warn.passed, block.passed, block.blocking) == (False, False, True)
    assert "11.00% of the window's lines are unusable (11 of 100)" in block.description
    assert [v.passed for v in malformed_verdicts(100, 1, settings)] == [True, True]
    assert [v.passed for v in malformed_verdicts(100, 2, settings)] == [False, True]
    # A site that wants every window judged sets the minimum to 0.
    strict = settings.model_copy(update={"malformed_min_lines": 0})
    assert [v.passed for v in malformed_verdicts(9, 1, strict)] == [False, False]
    assert [v.passed for v in malformed_verdicts(0, 0, strict)] == [True, True]

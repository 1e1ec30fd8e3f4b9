"""The history generator writes what ingesting `generate_site`'s events would give: the same
readers and articles, in the sessionized-interactions schema, at the same volume."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from article_rec_assets.ingestion.bucket import site_bucket_dir
from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.schemas import SESSIONIZED_INTERACTIONS
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.sites import load_demo_sites
from bench.history import generate_history

START = datetime(2024, 5, 2, 0, tzinfo=UTC)
END = START + timedelta(days=1)


@pytest.fixture(scope="module")
def site() -> SiteConfig:
    site = load_demo_sites()["demo-city-paper"]
    demo = site.demo.model_copy(
        update={"readers": 600, "sessions_per_day": 1500, "backlist_days": 3, "articles_per_day": 20}
    )
    return site.model_copy(update={"demo": demo})


@pytest.fixture(scope="module")
def ingested(site: SiteConfig, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A day of real events through parsing, cleaning and sessionizing."""
    data_dir = tmp_path_factory.mktemp("events")
    generate_site(site, data_dir, START, END, noise=None)
    objects = [(p.name, p.read_bytes()) for p in sorted(site_bucket_dir(data_dir, site).rglob("*.gz"))]
    parsed = parse_objects(objects)
    events = clean_window(parsed, parse_objects([]), site.events).events
    return data_dir, sessionize(events, site).interactions


def history(site: SiteConfig, start: datetime = START, end: datetime = END) -> dict[datetime, pd.DataFrame]:
    # The world of a generate_site run over the same day, history over that day too.
    return dict(generate_history(site, START, END, start, end))


def test_windows_follow_the_schema_and_cover_the_span(site: SiteConfig) -> None:
    windows = history(site)
    assert list(windows) == [START + timedelta(hours=2 * i) for i in range(12)]
    for start, frame in windows.items():
        SESSIONIZED_INTERACTIONS.validate(frame)
        assert len(frame)
        assert frame["first_seen"].min() >= pd.Timestamp(start)
        assert frame["first_seen"].max() < pd.Timestamp(start + timedelta(hours=2))


def test_same_readers_and_articles_as_the_events(site: SiteConfig, ingested) -> None:
    data_dir, real = ingested
    generated = pd.concat(history(site).values())
    catalogue = pd.read_json(data_dir / site.articles.catalogue.path, lines=True, dtype=False)
    assert set(generated["external_id"]) <= set(catalogue["external_id"])
    # Readers drawn by the same activity: most of the day's real readers are in the generated day.
    shared = len(set(real["reader_id"]) & set(generated["reader_id"])) / real["reader_id"].nunique()
    assert shared > 0.5
    for article, path in (
        generated[["external_id", "article_path"]].drop_duplicates().head(50).itertuples(index=False)
    ):
        assert catalogue.loc[catalogue["external_id"] == article, "path"].item() == path


def test_volume_and_reading_time_match_the_events(site: SiteConfig, ingested) -> None:
    _, real = ingested
    generated = pd.concat(history(site).values())
    assert len(generated) == pytest.approx(len(real), rel=0.15)
    assert generated["session_id"].nunique() == pytest.approx(real["session_id"].nunique(), rel=0.15)
    assert generated["engaged_seconds"].mean() == pytest.approx(real["engaged_seconds"].mean(), rel=0.15)
    # Snowplow's rule on both sides: 5 s for the first heartbeat, 10 s for each further one.
    assert (
        (generated["engaged_seconds"] == 5 + 10 * (generated["pings"] - 1).clip(lower=0))
        .where(generated["pings"] > 0, generated["engaged_seconds"] == 0)
        .all()
    )


def test_deterministic_and_windowed_by_the_span(site: SiteConfig) -> None:
    first, again = history(site), history(site)
    for start in first:
        pd.testing.assert_frame_equal(first[start], again[start])
    assert len(history(site, START, START + timedelta(hours=4))) == 2

"""The demo's clickstream carried on after the span `make demo` generated, an hour at a time, as a
live bucket receives it (the demo's sensor, sensor.py, writes each hour once it has ended).

`generate_site` cannot append an hour to a span it wrote. It draws the span's articles in one
stream, so which articles of the span's last day exist (and so every draw after them: later
articles, the readers' tastes) depends on where the span ends; and it drops the events of the
sessions still going at its end. So the hours after the history:

- read the history's own articles and readers (`draw_readership` over the history's span), and
  each later day's articles come from a stream of that day's own, numbered after the history's:
  the catalogue only grows, its rows stay as they were, the readers stay the history's readers;
- are generated a day at a time, in pieces [end + k days, end + k + 1 days). A piece is drawn
  whole, from streams keyed by its start, so it always writes the same bytes, and only the hours
  of it that have ended are moved into the bucket. An hour is so the same whether it is written
  the moment it ends or with the rest of its day, and the noise keeps the history's daily rates
  (one truncated and one empty object a day, late events and duplicates arriving in later hours).

Nothing is written before the history's end: the history's objects are never touched.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.clickstream import (
    DEFAULT_NOISE,
    Article,
    Readership,
    draw_article,
    draw_readership,
    generate_site,
    published_time,
    write_catalogue,
)
from article_rec_demo.generator.noise import NoiseSettings
from article_rec_demo.sites import DemoSettings, as_demo_site

PIECE = timedelta(days=1)
HOUR = timedelta(hours=1)
# A live demo started long after its history ended (`make ui` days after `make demo`) writes the
# last day only. The schedule ingests the newest window alone, and its volume check compares it
# with the same window on the earlier days that were ingested, so older hours would only be read
# by a backfill; and a sensor tick has a time limit (60 s by default) that generating many days
# at once would exceed, on every tick again.
MAX_CATCH_UP = PIECE
# Seeds the stream of a day's articles after the history, next to the site's seed.
_ARTICLE_STREAM = 0x6C697665


@dataclass(frozen=True)
class LiveHours:
    """What one call wrote for a site: the hours [start, end), their objects, the catalogue."""

    site: str
    start: datetime
    end: datetime
    objects: int
    articles: int  # in the catalogue as written (published before `end`)


def _midnight(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def articles_after(
    demo: DemoSettings, history_end: datetime, first_number: int, until: datetime, seed: int
) -> list[Article]:
    """The articles published from `history_end` to `until`, in order. Each day's are drawn from
    the day's own stream and numbered from `first_number` by day (`articles_per_day` numbers a
    day, some unused), so a day's articles are the same whatever `until` is."""
    articles: list[Article] = []
    first_day = _midnight(history_end)
    day = first_day
    while day < until:
        rng = np.random.default_rng([seed, _ARTICLE_STREAM, int(day.timestamp()) // 86400])
        base = first_number + (day - first_day).days * demo.articles_per_day
        for i in range(demo.articles_per_day):
            # Every article is drawn whole, kept or not, so the day's stream never depends on `until`.
            article = draw_article(demo, published_time(day, rng), base + i, rng)
            if history_end <= article.published_at < until:
                articles.append(article)
        day += PIECE
    articles.sort(key=lambda a: a.published_at)
    return articles


def live_readership(
    demo: DemoSettings, history: tuple[datetime, datetime], until: datetime, seed: int
) -> Readership:
    """The history's articles and readers, with the articles published after it up to `until`."""
    drawn = draw_readership(demo, *history, seed)
    # The history numbers its articles one after the other from `first_external_id`.
    later = articles_after(demo, history[1], demo.first_external_id + len(drawn.articles), until, seed)
    if not later:
        return drawn
    return replace(
        drawn,
        articles=drawn.articles + later,
        published=np.concatenate([drawn.published, [a.published_at.timestamp() for a in later]]),
        topics=np.concatenate([drawn.topics, [a.topic for a in later]]),
        appeal=np.concatenate([drawn.appeal, [a.appeal for a in later]]),
    )


def hours_due(
    history_end: datetime, written_until: datetime | None, now: datetime
) -> tuple[datetime, datetime] | None:
    """The hours [start, end) to write at `now`: those ended since `written_until` (else since
    the history's end), the last `MAX_CATCH_UP` at most; None when there is none."""
    end = _floor_hour(now)
    start = max(history_end, written_until or history_end, end - MAX_CATCH_UP)
    return (start, end) if start < end else None


def pieces(history_end: datetime, start: datetime, end: datetime) -> list[datetime]:
    """The starts of the day-long pieces after the history that hold the hours [start, end)."""
    first = history_end + PIECE * ((start - history_end) // PIECE)
    return [first + PIECE * k for k in range(-(-(end - first) // PIECE))]


def write_live_hours(
    site: SiteConfig,
    data_dir: Path,
    history: tuple[datetime, datetime],
    now: datetime,
    written_until: datetime | None = None,
    noise: NoiseSettings | None = DEFAULT_NOISE,
) -> LiveHours | None:
    """Write the site's hours that have ended by `now` since `written_until` (see `hours_due`)
    into its bucket under `data_dir`, and its catalogue as of the last of them; None when no hour
    is due. `history`: the span `generate_site(site, data_dir, *history)` wrote (with `noise`)."""
    site = as_demo_site(site)
    if site.demo is None:
        raise ValueError(f"site {site.name!r} has no generator settings in article_rec_demo/sites/")
    due = hours_due(history[1], written_until, now)
    if due is None:
        return None
    start, end = due
    demo, seed = site.demo, site.demo.seed
    bucket = site_bucket_dir(data_dir, site)
    objects = 0
    data_dir.mkdir(parents=True, exist_ok=True)
    # Generated beside the bucket (a hidden folder no reader lists) and moved in by renaming, so a
    # run reading an hour folder never sees half an object.
    with tempfile.TemporaryDirectory(prefix=".live-", dir=data_dir) as scratch:
        for piece in pieces(history[1], start, end):
            piece_dir = Path(scratch) / f"{piece:%Y%m%d%H}"
            readership = live_readership(demo, history, piece + PIECE, seed)
            generate_site(site, piece_dir, piece, piece + PIECE, noise=noise, readership=readership)
            hour = max(piece, start)
            while hour < min(piece + PIECE, end):
                folder = site_bucket_dir(piece_dir, site) / hour_folder(hour)
                for source in sorted(folder.iterdir()) if folder.is_dir() else []:
                    target = bucket / hour_folder(hour) / source.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(source, target)
                    objects += 1
                hour += HOUR
        published = [a for a in live_readership(demo, history, end, seed).articles if a.published_at < end]
        catalogue = Path(scratch) / "catalogue.jsonl"
        write_catalogue(catalogue, published, demo)
        target = data_dir / site.articles.catalogue.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(catalogue, target)
    return LiveHours(site.name, start, end, objects, len(published))

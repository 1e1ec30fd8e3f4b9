"""Generate a realistic news clickstream as Snowplow enriched JSON lines.

The model behind the data, so that recommendations have something to learn:
- articles are published over time, each with a topic and an appeal; their pull decays with age;
- readers prefer one or two topics, and a session mostly stays on one topic, so co-reading
  carries topical signal;
- traffic follows a daily cycle; reading times are log-normal; a `page_view` is followed by a
  `page_ping` 5 s later and then every 10 s while the reader stays (Snowplow's activity tracking).

Everything is drawn from generators seeded by the site's seed, so the same arguments always
write the same bytes. Written so that later issues can add duplicates, bots, AMP and bad lines
as further steps over the event stream.
"""

from __future__ import annotations

import gzip
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from article_rec_assets.sites import DemoSettings, SiteConfig

HEARTBEAT_SECONDS = 10
MIN_VISIT_SECONDS = 5
POPULARITY_HALF_LIFE_HOURS = 30.0
# Share of traffic by UTC hour: quiet nights, a morning and an evening peak.
HOURLY_TRAFFIC = np.array(
    [2, 1.5, 1, 1, 1, 1.5, 3, 5, 7, 7, 6, 6, 6.5, 6.5, 6, 6, 6, 6.5, 7, 7.5, 7, 6, 4.5, 3],
    dtype=float,
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
)
# Title words, kept as text because a word list reads better that way.
_TITLE_WORDS = """
    city council budget vote school board river park housing rent transit line mayor report
    court ruling water plan new old local state summer winter night market street district
    fire police teachers tax hearing festival museum opening stadium season coach team bill
    farm power grid clinic hospital nurses election race poll border bridge
"""
WORDS = tuple(_TITLE_WORDS.split())
NON_ARTICLE_PATHS = ("/", "/news/", "/about/", "/newsletters/", "/search/")


@dataclass(frozen=True)
class Article:
    external_id: str
    path: str
    title: str
    topic: int
    published_at: datetime
    appeal: float


@dataclass(frozen=True)
class GenerationSummary:
    site: str
    articles: int
    sessions: int
    page_views: int
    events: int
    files: int


def hour_folder(hour: datetime) -> str:
    """The Snowplow S3 loader's folder for a UTC hour."""
    return hour.strftime("enriched/good/%Y/%m/%d/%H")


def site_bucket_dir(data_dir: Path, site: SiteConfig) -> Path:
    """Where the local 'bucket' of a site lives under the data directory."""
    base = data_dir / "buckets" / site.events.bucket
    return base / site.events.prefix if site.events.prefix else base


def _iso(timestamps: np.ndarray) -> list[str]:
    """Epoch seconds to Snowplow's JSON timestamps, `YYYY-MM-DDTHH:MM:SS.fffZ`."""
    ms = np.round(timestamps * 1000).astype("datetime64[ms]")
    return [text + "Z" for text in np.datetime_as_string(ms, unit="ms").tolist()]


def _pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    """One index drawn with probability proportional to `weights` (cheaper than choice(p=))."""
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_articles(
    demo: DemoSettings, start: datetime, end: datetime, rng: np.random.Generator
) -> list[Article]:
    articles: list[Article] = []
    first_day = (start - timedelta(days=demo.backlist_days)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    days = math.ceil((end - first_day).total_seconds() / 86400)
    next_id = demo.first_external_id
    for day in range(days):
        day_start = first_day + timedelta(days=day)
        for _ in range(demo.articles_per_day):
            # Newsrooms publish in working hours (UTC here, for simplicity).
            published_at = day_start + timedelta(seconds=float(rng.uniform(6, 22) * 3600))
            if published_at >= end:
                continue
            topic = int(rng.integers(len(demo.topics)))
            words = [WORDS[i] for i in rng.choice(len(WORDS), size=4, replace=False)]
            title = f"{demo.topics[topic].title()}: {' '.join(words).capitalize()}"
            slug = "-".join(words) + f"-{next_id}"
            external_id = str(next_id) if "{external_id}" in demo.path_template else slug
            path = demo.path_template.format(
                external_id=external_id, slug=slug, date=published_at.strftime("%Y/%m/%d")
            )
            appeal = float(rng.lognormal(0.0, 1.0))
            articles.append(Article(external_id, path, title, topic, published_at, appeal))
            next_id += 1
    articles.sort(key=lambda a: a.published_at)
    return articles


def _article_weights(appeal: np.ndarray, published: np.ndarray, at: float) -> np.ndarray:
    age_hours = (at - published) / 3600.0
    weights = appeal * np.power(0.5, np.clip(age_hours, 0, None) / POPULARITY_HALF_LIFE_HOURS)
    weights[age_hours < 0] = 0.0  # not published yet
    return weights + (age_hours >= 0) * 1e-4  # the backlist is still read, rarely


def generate_site(
    site: SiteConfig, data_dir: Path, start: datetime, end: datetime, seed: int | None = None
) -> GenerationSummary:
    """Write `start`..`end` (UTC) of clickstream and the site's catalogue under `data_dir`."""
    if site.demo is None:
        raise ValueError(f"site {site.name!r} has no `demo` settings to generate data from")
    demo = site.demo
    seed = demo.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    ids = random.Random(seed)

    articles = make_articles(demo, start, end, rng)
    published = np.array([a.published_at.timestamp() for a in articles])
    topics = np.array([a.topic for a in articles])
    appeal = np.array([a.appeal for a in articles])
    n_topics = len(demo.topics)

    reader_ids = [ids.getrandbits(128).to_bytes(16, "big").hex()[:16] for _ in range(demo.readers)]
    # Most readers care about one or two topics.
    preferences = rng.dirichlet(np.full(n_topics, 0.3), size=demo.readers)
    activity = rng.lognormal(0.0, 1.0, size=demo.readers)
    activity /= activity.sum()
    reader_agents = rng.integers(len(USER_AGENTS), size=demo.readers)

    lines_by_hour: dict[float, list[tuple[float, bytes]]] = defaultdict(list)
    end_ts = end.timestamp()
    n_sessions = n_views = n_events = 0
    hours = int((end - start).total_seconds() // 3600)
    hourly_share = HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum()
    for h in range(hours):
        hour_start = start + timedelta(hours=h)
        expected = demo.sessions_per_day * hourly_share[hour_start.hour]
        for _ in range(int(rng.poisson(expected))):
            n_sessions += 1
            reader = _pick(rng, activity)
            session_id = _uuid(ids)
            t = hour_start.timestamp() + float(rng.uniform(0, 3600))
            session_topic = int(rng.choice(n_topics, p=preferences[reader]))
            seen: set[int] = set()
            for _ in range(1 + int(rng.geometric(0.35))):
                if rng.random() < 0.12:
                    path, dwell = NON_ARTICLE_PATHS[int(rng.integers(len(NON_ARTICLE_PATHS)))], 8.0
                else:
                    topic = (
                        session_topic
                        if rng.random() < 0.85
                        else int(rng.choice(n_topics, p=preferences[reader]))
                    )
                    weights = _article_weights(appeal, published, t) * (topics == topic)
                    for index in seen:
                        weights[index] = 0.0
                    if weights.sum() <= 0:
                        break
                    index = _pick(rng, weights)
                    seen.add(index)
                    path = articles[index].path
                    dwell = float(min(rng.lognormal(math.log(70), 0.8), 1800))
                n_views += 1
                page_view_id = _uuid(ids)
                base = {
                    "app_id": site.name,
                    "platform": "web",
                    "domain_userid": reader_ids[reader],
                    "domain_sessionid": session_id,
                    "page_url": f"https://{demo.host}{path}",
                    "page_urlhost": demo.host,
                    "page_urlpath": path,
                    "useragent": USER_AGENTS[int(reader_agents[reader])],
                    "contexts_com_snowplowanalytics_snowplow_web_page_1": [{"id": page_view_id}],
                }
                # The page view, then a ping at the minimum visit and every heartbeat after it.
                n_pings = (
                    int((dwell - MIN_VISIT_SECONDS) // HEARTBEAT_SECONDS) + 1
                    if dwell >= MIN_VISIT_SECONDS
                    else 0
                )
                offsets = np.concatenate([[0.0], MIN_VISIT_SECONDS + HEARTBEAT_SECONDS * np.arange(n_pings)])
                created = t + offsets
                collected = created + rng.exponential(0.5, size=len(offsets))
                created_iso, sent_iso, collected_iso = (_iso(created), _iso(created + 0.2), _iso(collected))
                for k in range(len(offsets)):
                    hour_ts = float(collected[k] // 3600 * 3600)
                    if hour_ts >= end_ts:
                        continue
                    name = "page_view" if k == 0 else "page_ping"
                    event = {
                        **base,
                        "event": name,
                        "event_name": name,
                        "event_id": _uuid(ids),
                        "dvce_created_tstamp": created_iso[k],
                        "dvce_sent_tstamp": sent_iso[k],
                        "collector_tstamp": collected_iso[k],
                        "derived_tstamp": created_iso[k],
                    }
                    lines_by_hour[hour_ts].append((float(collected[k]), orjson.dumps(event)))
                    n_events += 1
                t += dwell + float(rng.uniform(2, 30))

    bucket = site_bucket_dir(data_dir, site)
    for hour_ts, lines in sorted(lines_by_hour.items()):
        hour = datetime.fromtimestamp(hour_ts, UTC)
        folder = bucket / hour_folder(hour)
        folder.mkdir(parents=True, exist_ok=True)
        lines.sort(key=lambda item: item[0])
        payload = b"\n".join(line for _, line in lines) + b"\n"
        # mtime=0 keeps the gzip bytes identical from run to run.
        target = folder / f"{site.name}-{hour:%Y%m%d%H}.jsonl.gz"
        with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=5) as gz:
            gz.write(payload)

    write_catalogue(data_dir / site.articles.catalogue.path, articles, demo)
    return GenerationSummary(site.name, len(articles), n_sessions, n_views, n_events, len(lines_by_hour))


def write_catalogue(path: Path, articles: list[Article], demo: DemoSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for a in articles:
            row = {
                "external_id": a.external_id,
                "path": a.path,
                "title": a.title,
                "published_at": a.published_at.isoformat().replace("+00:00", "Z"),
                "section": demo.topics[a.topic],
            }
            f.write(orjson.dumps(row) + b"\n")

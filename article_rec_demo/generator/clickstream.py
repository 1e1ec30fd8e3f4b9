"""Generate a realistic news clickstream as Snowplow enriched events, dirt included.

The model behind the data, so that recommendations have something to learn:
- articles are published over time, each with a topic and an appeal; their pull decays with age;
- readers prefer one or two topics, and a session mostly stays on one topic, so co-reading
  carries topical signal;
- traffic follows a daily cycle; reading times are log-normal; a `page_view` is followed by a
  `page_ping` 5 s later and then every 10 s while the reader stays (Snowplow's activity tracking).

On top of that human web traffic, `NoiseSettings` (generator/noise.py) adds what a real bucket
holds: enriched-TSV lines among the JSON lines, AMP readers, duplicates delivered again, bots,
staging and localhost sessions, late and too-late events, malformed lines, a truncated gzip object
per day and an empty object. The noise is drawn from random streams of its own, so the human
sessions are the clean ones (only their late, TSV or IAB-tagged events change), and `noise=None`
writes exactly the clean bytes.

Besides the bucket and the catalogue, each run writes `<site>/ground_truth.json` and
`<site>/page_views_truth.parquet`: exact counts a parser must reproduce (see generator/truth.py).

Everything is drawn from generators seeded by the site's seed, so the same arguments always
write the same bytes.
"""

from __future__ import annotations

import gzip
import io
import math
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq

from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.noise import (
    AMP_ID_KEY,
    AMP_PAGE_KEY,
    AMP_PING_KEY,
    BOT_USER_AGENTS,
    DEFAULT_NOISE,
    IAB_HUMAN,
    IAB_KEY,
    IAB_ROBOT,
    MALFORMED_REASONS,
    WEB_PAGE_KEY,
    NoiseSettings,
    amp_cache_host,
    malformed_line,
)
from article_rec_demo.generator.truth import (
    CATEGORIES,
    MALFORMED_BIT,
    TSV_BIT,
    LineRecords,
    PageViewRow,
    WrittenObject,
    count_truth,
    event_code,
    malformed_code,
)
from article_rec_demo.generator.tsv import to_tsv
from article_rec_demo.sites import DemoSettings, DemoSite, as_demo_site

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
MOBILE_USER_AGENTS = (USER_AGENTS[1], USER_AGENTS[3])
# Title words, kept as text because a word list reads better that way.
_TITLE_WORDS = """
    city council budget vote school board river park housing rent transit line mayor report
    court ruling water plan new old local state summer winter night market street district
    fire police teachers tax hearing festival museum opening stadium season coach team bill
    farm power grid clinic hospital nurses election race poll border bridge
"""
WORDS = tuple(_TITLE_WORDS.split())
NON_ARTICLE_PATHS = ("/", "/news/", "/about/", "/newsletters/", "/search/")
GROUND_TRUTH_FILE = "ground_truth.json"
PAGE_VIEWS_TRUTH_FILE = "page_views_truth.parquet"
# Seeds the noise's own random streams, next to the site's seed.
_NOISE_STREAM = 0x6E6F697A
_URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_STAFF_READERS = 6
# The variant (RFC 4122) and version (4) bits of a random UUID.
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)


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
    sessions: int  # human web sessions
    page_views: int  # human web page views, including those cut off at `end`
    events: int  # event lines written (noise included, malformed lines not)
    files: int  # objects written (the empty ones included)
    ground_truth: dict = field(default_factory=dict, compare=True)


def _iso(timestamps: np.ndarray) -> list[str]:
    """Epoch seconds to Snowplow's JSON timestamps, `YYYY-MM-DDTHH:MM:SS.fffZ`."""
    ms = np.round(timestamps * 1000).astype("datetime64[ms]")
    return [text + "Z" for text in np.datetime_as_string(ms, unit="ms").tolist()]


def _pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    """One index drawn with probability proportional to `weights` (cheaper than choice(p=))."""
    return _pick_cumulative(rng, np.cumsum(weights))


def _pick_cumulative(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """`_pick` with the weights' running sum made once: drawing one of a large site's millions of
    readers per session would otherwise sum them all again each time."""
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def _uuid(rng: random.Random) -> str:
    """`str(uuid.UUID(int=rng.getrandbits(128), version=4))`, without building the UUID."""
    n = (rng.getrandbits(128) & _UUID_KEEP) | _UUID_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _hex16(rng: random.Random) -> str:
    return rng.getrandbits(128).to_bytes(16, "big").hex()[:16]


def _url_safe(rng: random.Random, length: int = 22) -> str:
    bits = rng.getrandbits(6 * length)
    return "".join(_URL_SAFE[(bits >> (6 * i)) & 63] for i in range(length))


def _day_number(t: float) -> int:
    """Days since 1970-01-01 of an epoch time, as written (rounded half-even to the millisecond)."""
    return round(t * 1000) // 86_400_000


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
            published_at = published_time(day_start, rng)
            if published_at >= end:
                continue
            articles.append(draw_article(demo, published_at, next_id, rng))
            next_id += 1
    articles.sort(key=lambda a: a.published_at)
    return articles


def published_time(day_start: datetime, rng: np.random.Generator) -> datetime:
    # Newsrooms publish in working hours (UTC here, for simplicity).
    return day_start + timedelta(seconds=float(rng.uniform(6, 22) * 3600))


def draw_article(
    demo: DemoSettings, published_at: datetime, number: int, rng: np.random.Generator
) -> Article:
    """An article's topic, title, path and appeal, numbered `number` (its id, or in its slug)."""
    topic = int(rng.integers(len(demo.topics)))
    words = [WORDS[i] for i in rng.choice(len(WORDS), size=4, replace=False)]
    title = f"{demo.topics[topic].title()}: {' '.join(words).capitalize()}"
    slug = "-".join(words) + f"-{number}"
    external_id = str(number) if "{external_id}" in demo.path_template else slug
    path = demo.path_template.format(
        external_id=external_id, slug=slug, date=published_at.strftime("%Y/%m/%d")
    )
    appeal = float(rng.lognormal(0.0, 1.0))
    return Article(external_id, path, title, topic, published_at, appeal)


def _article_weights(appeal: np.ndarray, published: np.ndarray, at: float) -> np.ndarray:
    age_hours = (at - published) / 3600.0
    weights = appeal * np.power(0.5, np.clip(age_hours, 0, None) / POPULARITY_HALF_LIFE_HOURS)
    weights[age_hours < 0] = 0.0  # not published yet
    return weights + (age_hours >= 0) * 1e-4  # the backlist is still read, rarely


def _ping_offsets(dwell: float) -> np.ndarray:
    """The page view at 0, then a ping at the minimum visit and every heartbeat after it."""
    n_pings = int((dwell - MIN_VISIT_SECONDS) // HEARTBEAT_SECONDS) + 1 if dwell >= MIN_VISIT_SECONDS else 0
    return np.concatenate([[0.0], MIN_VISIT_SECONDS + HEARTBEAT_SECONDS * np.arange(n_pings)])


class _Lines:
    """The lines of every hour folder, each as (sort key, bytes, serial in `records`)."""

    def __init__(self, end_ts: float, noise: NoiseSettings | None, rand: random.Random | None) -> None:
        self.by_hour: dict[float, list[tuple[float, bytes, object]]] = defaultdict(list)
        self.end_ts = end_ts
        self.rand = rand.random if rand is not None else None
        self.tsv_share = noise.tsv_share if noise is not None else 0.0
        self.amp_tsv_share = noise.amp_tsv_share if noise is not None else 0.0
        self.events = 0
        self.categories = list(CATEGORIES)
        self.records = LineRecords()

    def category(self, name: str) -> int:
        """The code of a category of events (see truth.event_code), registered on first use."""
        if name not in self.categories:
            self.categories.append(name)
        return self.categories.index(name)

    def web_page_view(
        self,
        base: dict,
        t: float,
        dwell: float,
        rng: np.random.Generator,
        ids: random.Random,
        category: str,
        page_view: int,
        delay: float = 0.0,
        late: int = 0,
        iab: list | None = None,
    ) -> None:
        """A web page view and its pings; `delay` holds the events back on the device (offline)."""
        offsets = _ping_offsets(dwell)
        created = t + offsets
        collected = created + rng.exponential(0.5, size=len(offsets))
        created_iso, sent_iso, collected_iso = (_iso(created), _iso(created + 0.2), _iso(collected))
        arrived = collected
        if delay:
            arrived = collected + delay
            sent_iso, collected_iso = _iso(arrived - 0.2), _iso(arrived)
        rand = self.rand if iab is None and self.tsv_share > 0 else None
        code = event_code(0, self.category(category), late, iab is IAB_HUMAN)
        end_ts = self.end_ts
        records = self.records
        # Python floats: the same values, cheaper to index than numpy scalars.
        created_at, collected_at, arrived_at = created.tolist(), collected.tolist(), arrived.tolist()
        for k in range(len(created_at)):
            hour_ts = collected_at[k] // 3600 * 3600
            if hour_ts >= end_ts:
                continue
            name = "page_view" if k == 0 else "page_ping"
            event_id = _uuid(ids)
            event = {
                **base,
                "event": name,
                "event_name": name,
                "event_id": event_id,
                "dvce_created_tstamp": created_iso[k],
                "dvce_sent_tstamp": sent_iso[k],
                "collector_tstamp": collected_iso[k],
                "derived_tstamp": created_iso[k],
            }
            if delay:
                hour_ts = arrived_at[k] // 3600 * 3600
                if hour_ts >= end_ts:
                    continue
            if iab is not None:
                event[IAB_KEY] = iab
            is_tsv = rand is not None and rand() < self.tsv_share
            line = to_tsv(event) if is_tsv else orjson.dumps(event)
            serial = len(records.code)
            records.code.append((code | 1 if k else code) | (TSV_BIT if is_tsv else 0))
            records.page_view.append(page_view)
            records.value.append(created_at[k] if k else 0.0)
            self.by_hour[hour_ts].append((arrived_at[k], line, serial))
            self.events += 1

    def amp_page_view(
        self,
        base: dict,
        t: float,
        engaged: float,
        open_seconds: float,
        rng: np.random.Generator,
        ids: random.Random,
        page_view: int,
    ) -> None:
        """An AMP page view, and a ping every heartbeat while the page is open (idle or not),
        each with the cumulative engaged seconds so far."""
        offsets = HEARTBEAT_SECONDS * np.arange(int(open_seconds // HEARTBEAT_SECONDS) + 1, dtype=float)
        created = t + offsets
        collected = created + rng.exponential(0.5, size=len(offsets))
        created_iso, sent_iso, collected_iso = (_iso(created), _iso(created + 0.2), _iso(collected))
        code = event_code(2, self.category("amp"))
        for k in range(len(offsets)):
            hour_ts = float(collected[k] // 3600 * 3600)
            if hour_ts >= self.end_ts:
                continue
            name = "amp_page_view" if k == 0 else "amp_page_ping"
            event_id = _uuid(ids)
            event = {
                **base,
                "event": "unstruct",
                "event_name": name,
                "event_id": event_id,
                "dvce_created_tstamp": created_iso[k],
                "dvce_sent_tstamp": sent_iso[k],
                "collector_tstamp": collected_iso[k],
                "derived_tstamp": created_iso[k],
            }
            total = 0
            if k:
                total = int(min(HEARTBEAT_SECONDS * k, engaged))
                event[AMP_PING_KEY] = {"totalEngagedTime": total}
            is_tsv = self.rand is not None and self.rand() < self.amp_tsv_share
            line = to_tsv(event) if is_tsv else orjson.dumps(event)
            serial = self.records.add(
                (code | 1 if k else code) | (TSV_BIT if is_tsv else 0), page_view, total
            )
            self.by_hour[hour_ts].append((float(collected[k]), line, serial))
            self.events += 1


@dataclass
class _World:
    """What the noise needs to know of the site's articles and readers."""

    site: DemoSite
    articles: list[Article]
    published: np.ndarray
    topics: np.ndarray
    appeal: np.ndarray
    # Whether page views on the site's own host count (and so go into the page-view truth).
    host_allowed: bool

    def random_path(self, rng: np.random.Generator, t: float, article_share: float) -> tuple[str, int]:
        """A page at time `t`: an article published by then (its index) or a section page (-1)."""
        available = int(np.searchsorted(self.published, t))
        if available and rng.random() < article_share:
            index = int(rng.integers(available))
            return self.articles[index].path, index
        return NON_ARTICLE_PATHS[int(rng.integers(len(NON_ARTICLE_PATHS)))], -1


@dataclass
class Readership:
    """A site's articles and readers, as `generate_site(..., start, end, seed)` draws them first:
    whatever else is generated for the same arguments reads the same articles and readers."""

    rng: np.random.Generator  # the random stream, positioned after these draws
    ids: random.Random
    articles: list[Article]
    published: np.ndarray  # epoch seconds, ascending
    topics: np.ndarray
    appeal: np.ndarray
    reader_ids: list[str]
    preferences: np.ndarray  # readers x topics
    activity: np.ndarray  # each reader's share of sessions
    reader_agents: np.ndarray


def draw_readership(demo: DemoSettings, start: datetime, end: datetime, seed: int) -> Readership:
    rng = np.random.default_rng(seed)
    ids = random.Random(seed)
    articles = make_articles(demo, start, end, rng)
    reader_ids = [ids.getrandbits(128).to_bytes(16, "big").hex()[:16] for _ in range(demo.readers)]
    # Most readers care about one or two topics.
    preferences = rng.dirichlet(np.full(len(demo.topics), 0.3), size=demo.readers)
    activity = rng.lognormal(0.0, 1.0, size=demo.readers)
    activity /= activity.sum()
    reader_agents = rng.integers(len(USER_AGENTS), size=demo.readers)
    return Readership(
        rng,
        ids,
        articles,
        np.array([a.published_at.timestamp() for a in articles]),
        np.array([a.topic for a in articles]),
        np.array([a.appeal for a in articles]),
        reader_ids,
        preferences,
        activity,
        reader_agents,
    )


def generate_site(
    site: SiteConfig,
    data_dir: Path,
    start: datetime,
    end: datetime,
    seed: int | None = None,
    *,
    noise: NoiseSettings | None = DEFAULT_NOISE,
    world: tuple[datetime, datetime] | None = None,
    part: tuple[int, int] | None = None,
    readership: Readership | None = None,
) -> GenerationSummary:
    """Write `start`..`end` (UTC) of clickstream, the site's catalogue and the ground truth under
    `data_dir`. `noise=None` writes the clean human web traffic only.

    `world`: draw the articles and readers for this longer span instead, so that a long span can
    be written piece by piece with the same site (a call holds all its events in memory until it
    writes them); each piece then has its own random streams, keyed by its `start`.

    `part=(i, n)` (with `world`): the i-th of n calls that together write the span's traffic,
    each 1/n of the sessions (and of the noise that scales with them) in objects of its own
    (`-part<i>of<n>`), so that a very large site's hour fits in memory a part at a time.

    `readership`: these articles and readers instead of drawing them (like `world`, each piece
    then has its own random streams): the live demo's hours after the history (generator/live.py)."""
    site = as_demo_site(site)
    if site.demo is None:
        raise ValueError(f"site {site.name!r} has no generator settings in article_rec_demo/sites/")
    if part is not None:
        if world is None or not 0 <= part[0] < part[1]:
            raise ValueError(f"part={part}: give world= and 0 <= i < n")
        share = site.demo.model_copy(update={"sessions_per_day": site.demo.sessions_per_day / part[1]})
        site = site.model_copy(update={"demo": share})
    demo = site.demo
    seed = demo.seed if seed is None else seed
    noisy = noise is not None
    pieced = world is not None or readership is not None
    piece = [int(start.timestamp()), *(part or ())] if pieced else []
    nrng = np.random.default_rng([seed, _NOISE_STREAM, *piece]) if noisy else None
    nids = random.Random(f"{seed}/{_NOISE_STREAM}" + "".join(f"/{p}" for p in piece)) if noisy else None

    if readership is None:
        readership = draw_readership(demo, *(world or (start, end)), seed)
    rng, ids, articles = readership.rng, readership.ids, readership.articles
    if pieced:
        rng, ids = np.random.default_rng([seed, *piece]), random.Random(f"{seed}/{piece}")
    published, topics, appeal = readership.published, readership.topics, readership.appeal
    reader_ids, preferences, activity = readership.reader_ids, readership.preferences, readership.activity
    reader_agents = readership.reader_agents
    n_topics = len(demo.topics)
    allowed = site.events.allowed_hosts
    world = _World(site, articles, published, topics, appeal, not allowed or demo.host in allowed)

    end_ts = end.timestamp()
    out = _Lines(end_ts, noise, nids)
    page_views: list[PageViewRow] = []
    n_sessions = n_views = 0
    hours = int((end - start).total_seconds() // 3600)
    hourly_share = HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum()
    activity_sum = np.cumsum(activity)
    for h in range(hours):
        hour_start = start + timedelta(hours=h)
        expected = demo.sessions_per_day * hourly_share[hour_start.hour]
        for _ in range(int(rng.poisson(expected))):
            n_sessions += 1
            reader = _pick_cumulative(rng, activity_sum)
            session_id = _uuid(ids)
            t = hour_start.timestamp() + float(rng.uniform(0, 3600))
            session_topic = int(rng.choice(n_topics, p=preferences[reader]))
            delay, late, iab = 0.0, 0, None
            if noisy:
                delay, late = _offline_delay(noise, nids, t, end_ts)
                if nids.random() < noise.iab_human_session_share:
                    iab = IAB_HUMAN
            seen: set[int] = set()
            for _ in range(1 + int(rng.geometric(0.35))):
                article = None
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
                    article = articles[index]
                    path = article.path
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
                    WEB_PAGE_KEY: [{"id": page_view_id}],
                }
                pv = -1
                if article is not None and world.host_allowed:
                    pv = len(page_views)
                    page_views.append(
                        PageViewRow(
                            page_view_id,
                            reader_ids[reader],
                            session_id,
                            article.external_id,
                            _day_number(t),
                            False,
                            late == 2,
                        )
                    )
                out.web_page_view(base, t, dwell, rng, ids, "human", pv, delay, late, iab)
                t += dwell + float(rng.uniform(2, 30))

    if noisy:
        _noise_sessions(out, world, page_views, start, hours, noise, nrng, nids)
        _malformed_lines(out, world, start, noise, nrng, nids)
        duplicates = _duplicate_lines(out, noise, nids)

    bucket = site_bucket_dir(data_dir, site)
    truncate = _truncated_hours(out, start, noise, nrng) if noisy else set()
    objects: list[WrittenObject] = []
    for hour_ts, lines in sorted(out.by_hour.items()):
        hour = datetime.fromtimestamp(hour_ts, UTC)
        folder_name = hour_folder(hour)
        folder = bucket / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        lines.sort(key=lambda item: item[0])
        payload = b"\n".join(line for _, line, _ in lines) + b"\n"
        suffix = f"-part{part[0]}of{part[1]}" if part else ""
        target = folder / f"{site.name}-{hour:%Y%m%d%H}{suffix}.jsonl.gz"
        data = _gzip(payload, target)
        key = f"{folder_name}/{target.name}"
        written = WrittenObject(key, folder_name, lines, len(lines), size=len(data))
        if hour_ts in truncate:
            data = _truncate(written, data, noise.truncate_at + float(nrng.uniform(-0.03, 0.03)))
        target.write_bytes(data)
        objects.append(written)
    if noisy:
        objects.extend(_empty_objects(bucket, site, sorted(out.by_hour), noise, nrng, part))

    write_catalogue(data_dir / site.articles.catalogue.path, articles, demo)
    objects.sort(key=lambda o: (o.folder, o.key))
    truth, table = count_truth(objects, out.records, page_views, out.categories)
    truth = {
        "site": site.name,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "seed": seed,
        "noise": noise.model_dump() if noisy else None,
        "bucket_dir": str(bucket.relative_to(data_dir)),
        "objects": len(objects),
        "duplicates_written": duplicates if noisy else {"copies": 0, "copies_in_later_folder": 0},
        **truth,
    }
    truth = _write_truth(data_dir / site.name, truth, table)
    return GenerationSummary(
        site.name, len(articles), n_sessions, n_views, out.events, len(objects), ground_truth=truth
    )


def _offline_delay(noise: NoiseSettings, rnd: random.Random, t: float, end_ts: float) -> tuple[float, int]:
    """How long a human session's events wait on the device: (seconds, lateness class)."""
    draw = rnd.random()
    if draw < noise.late_session_share:
        return rnd.uniform(2.0, 4.5) * 3600, 1
    if draw < noise.late_session_share + noise.too_late_session_share:
        # Only where the span leaves room for the events to arrive before `end`.
        delay = rnd.uniform(72.5, 78.0) * 3600
        if t + delay + 2 * 3600 < end_ts:
            return delay, 2
    return 0.0, 0


def _noise_sessions(
    out: _Lines,
    world: _World,
    page_views: list[PageViewRow],
    start: datetime,
    hours: int,
    noise: NoiseSettings,
    rng: np.random.Generator,
    rnd: random.Random,
) -> None:
    """Sessions of bots, internal hosts and AMP readers, hour by hour."""
    demo = world.site.demo
    hourly_share = HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum()
    flat = demo.sessions_per_day / 24
    staging_host = f"staging.{demo.host}"
    staff = [_hex16(rnd) for _ in range(_STAFF_READERS)]
    n_amp = max(20, round(demo.readers * noise.amp_reader_share))
    amp_readers = [f"amp-{_url_safe(rnd)}" for _ in range(n_amp)]
    amp_activity = rng.lognormal(0.0, 1.0, size=n_amp)
    amp_preferences = rng.dirichlet(np.full(len(demo.topics), 0.3), size=n_amp)
    amp_agents = rng.integers(len(MOBILE_USER_AGENTS), size=n_amp)
    amp_activity_sum = np.cumsum(amp_activity)
    for h in range(hours):
        hour_start = (start + timedelta(hours=h)).timestamp()
        human = demo.sessions_per_day * hourly_share[(start + timedelta(hours=h)).hour]
        kinds = (
            ("bot:ua", flat * noise.bot_ua_session_share),
            ("bot:iab", flat * noise.bot_iab_session_share),
            ("bot:empty_ua", human * noise.empty_ua_session_share),
            (f"host:{staging_host}", human * noise.staging_session_share),
            ("host:localhost", human * noise.localhost_session_share),
        )
        for category, expected in kinds:
            for _ in range(int(rng.poisson(expected))):
                t = hour_start + float(rng.uniform(0, 3600))
                _extra_web_session(out, world, category, t, staff, rng, rnd)
        for _ in range(int(rng.poisson(human * noise.amp_session_share))):
            reader = _pick_cumulative(rng, amp_activity_sum)
            t = hour_start + float(rng.uniform(0, 3600))
            agent = MOBILE_USER_AGENTS[int(amp_agents[reader])]
            _amp_session(
                out,
                world,
                page_views,
                amp_readers[reader],
                amp_preferences[reader],
                agent,
                t,
                noise,
                rng,
                rnd,
            )


def _extra_web_session(
    out: _Lines,
    world: _World,
    category: str,
    t: float,
    staff: list[str],
    rng: np.random.Generator,
    rnd: random.Random,
) -> None:
    """A session that is not a human reader's on the site: bots, or staff on internal hosts."""
    demo = world.site.demo
    host, scheme = demo.host, "https"
    useragent: str | None = USER_AGENTS[int(rng.integers(len(USER_AGENTS)))]
    iab = None
    reader = _hex16(rnd)
    if category == "bot:ua":
        useragent = BOT_USER_AGENTS[int(rng.integers(len(BOT_USER_AGENTS)))]
    elif category == "bot:iab":
        iab = IAB_ROBOT
    elif category == "bot:empty_ua":
        useragent = None
    else:
        host = category.removeprefix("host:")
        reader = staff[int(rng.integers(len(staff)))]
    is_bot = category.startswith("bot:") and category != "bot:empty_ua"
    pages = min(2 + int(rng.geometric(0.15)), 40) if is_bot else 1 + int(rng.geometric(0.4))
    session_id = _uuid(rnd)
    authority = "localhost:8080" if host == "localhost" else host
    if host == "localhost":
        scheme = "http"
    for _ in range(pages):
        path, _ = world.random_path(rng, t, 0.85)
        base = {
            "app_id": world.site.name,
            "platform": "web",
            "domain_userid": reader,
            "domain_sessionid": session_id,
            "page_url": f"{scheme}://{authority}{path}",
            "page_urlhost": host,
            "page_urlpath": path,
            "useragent": useragent,
            WEB_PAGE_KEY: [{"id": _uuid(rnd)}],
        }
        if useragent is None:
            del base["useragent"]  # the analytics SDK leaves empty fields out
        dwell = float(rng.uniform(0, 15)) if is_bot else float(min(rng.lognormal(math.log(40), 0.8), 900))
        out.web_page_view(base, t, dwell, rng, rnd, category, -1, iab=iab)
        t += dwell + (float(rng.uniform(0.5, 5)) if is_bot else float(rng.uniform(2, 30)))


def _amp_session(
    out: _Lines,
    world: _World,
    page_views: list[PageViewRow],
    reader: str,
    preference: np.ndarray,
    useragent: str,
    t: float,
    noise: NoiseSettings,
    rng: np.random.Generator,
    rnd: random.Random,
) -> None:
    """A chain of AMP page views by one reader; the gaps between them are short, 8-25 minutes
    (the same session by inactivity), or 40 minutes to 6 hours (a new one)."""
    demo = world.site.demo
    cache_host = amp_cache_host(demo.host)
    seen: set[int] = set()
    for _ in range(min(1 + int(rng.geometric(0.4)), 8)):
        weights = _article_weights(world.appeal, world.published, t) * preference[world.topics]
        for index in seen:
            weights[index] = 0.0
        if weights.sum() <= 0:
            break
        index = _pick(rng, weights)
        seen.add(index)
        article = world.articles[index]
        amp_path = article.path.rstrip("/") + "/amp"
        if rng.random() < noise.amp_cache_share:
            prefix = "v" if rng.random() < noise.amp_viewer_share else "c"
            host, path = cache_host, f"/{prefix}/s/{demo.host}{amp_path}"
        else:
            host, path = demo.host, amp_path
        page_view_id = _url_safe(rnd)
        base = {
            "app_id": world.site.name,
            "platform": "web",
            "page_url": f"https://{host}{path}",
            "page_urlhost": host,
            "page_urlpath": path,
            "useragent": useragent,
            AMP_ID_KEY: [{"ampClientId": reader}],
            AMP_PAGE_KEY: [{"ampPageViewId": page_view_id}],
        }
        # Engaged for a log-normal time, then the page stays open, idle, for a while.
        engaged = float(min(rng.lognormal(math.log(45), 0.8), 1200))
        idle = float(rng.exponential(40)) if rng.random() < 0.8 else float(rng.uniform(120, 900))
        pv = -1
        if world.host_allowed:
            pv = len(page_views)
            page_views.append(
                PageViewRow(page_view_id, reader, "", article.external_id, _day_number(t), True, False)
            )
        out.amp_page_view(base, t, engaged, engaged + idle, rng, rnd, pv)
        draw = rng.random()
        if draw < 0.55:
            gap = float(rng.uniform(2, 30))
        elif draw < 0.8:
            gap = float(rng.uniform(8 * 60, 25 * 60))
        else:
            gap = float(rng.uniform(40 * 60, 6 * 3600))
        t += engaged + idle + gap


def _day_blocks(hours: list[float], start: datetime) -> dict[int, list[float]]:
    """Hour folders grouped by generated day (24 hours from `start`)."""
    blocks: dict[int, list[float]] = defaultdict(list)
    for hour_ts in sorted(hours):
        blocks[int((hour_ts - start.timestamp()) // 86400)].append(hour_ts)
    return blocks


def _malformed_lines(
    out: _Lines,
    world: _World,
    start: datetime,
    noise: NoiseSettings,
    rng: np.random.Generator,
    rnd: random.Random,
) -> None:
    """Lines a parser must set aside, each with exactly one defect, spread over the hours of
    each generated day in proportion to their lines."""
    if noise.malformed_share_per_reason <= 0:
        return
    demo = world.site.demo
    for block in _day_blocks(list(out.by_hour), start).values():
        counts = np.array([len(out.by_hour[h]) for h in block], dtype=float)
        for reason in MALFORMED_REASONS:
            for _ in range(int(rng.poisson(noise.malformed_share_per_reason * counts.sum()))):
                hour_ts = block[_pick(rng, counts)]
                created = hour_ts + float(rng.uniform(0, 3590))
                collected = created + float(rng.uniform(0.05, 2.0))
                created_iso, sent_iso, collected_iso = _iso(np.array([created, created + 0.2, collected]))
                path, _ = world.random_path(rng, created, 0.9)
                name = (
                    "page_view" if reason == "page_event_without_path" or rng.random() < 0.3 else "page_ping"
                )
                event = {
                    "app_id": world.site.name,
                    "platform": "web",
                    "domain_userid": _hex16(rnd),
                    "domain_sessionid": _uuid(rnd),
                    "page_url": f"https://{demo.host}{path}",
                    "page_urlhost": demo.host,
                    "page_urlpath": path,
                    "useragent": USER_AGENTS[int(rng.integers(len(USER_AGENTS)))],
                    WEB_PAGE_KEY: [{"id": _uuid(rnd)}],
                    "event": name,
                    "event_name": name,
                    "event_id": _uuid(rnd),
                    "dvce_created_tstamp": created_iso,
                    "dvce_sent_tstamp": sent_iso,
                    "collector_tstamp": collected_iso,
                    "derived_tstamp": created_iso,
                }
                line = malformed_line(reason, event, rnd)
                out.by_hour[hour_ts].append((collected, line, out.records.add(malformed_code(reason))))


def _duplicate_lines(out: _Lines, noise: NoiseSettings, rnd: random.Random) -> dict[str, int]:
    """Exact copies of event lines: delivered again soon (same folder) or 1-6 hours later."""
    copies: list[tuple[float, tuple[float, bytes, int]]] = []
    later = 0
    codes = out.records.code
    if noise.duplicate_share > 0:
        for hour_ts, lines in sorted(out.by_hour.items()):
            for key, line, serial in lines:
                if codes[serial] & MALFORMED_BIT or rnd.random() >= noise.duplicate_share:
                    continue
                target = hour_ts
                if rnd.random() < noise.duplicate_later_folder_share:
                    candidate = hour_ts + 3600 * rnd.randint(1, 6)
                    if candidate < out.end_ts:
                        target = candidate
                if target == hour_ts:
                    copies.append((target, (key + rnd.uniform(0.5, 90), line, serial)))
                else:
                    later += 1
                    copies.append((target, (target + rnd.uniform(0, 3600), line, serial)))
    for target, entry in copies:
        out.by_hour[target].append(entry)
    out.events += len(copies)
    return {"copies": len(copies), "copies_in_later_folder": later}


def _truncated_hours(
    out: _Lines, start: datetime, noise: NoiseSettings, rng: np.random.Generator
) -> set[float]:
    chosen: set[float] = set()
    for block in _day_blocks(list(out.by_hour), start).values():
        k = min(noise.truncated_objects_per_day, len(block))
        chosen.update(float(h) for h in rng.choice(np.array(block), size=k, replace=False))
    return chosen


def _gzip(payload: bytes, target: Path) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 keeps the gzip bytes identical from run to run; the header names the target file.
    with gzip.GzipFile(filename=str(target), fileobj=buffer, mode="wb", mtime=0, compresslevel=5) as gz:
        gz.write(payload)
    return buffer.getvalue()


def _truncate(written: WrittenObject, data: bytes, fraction: float) -> bytes:
    """Cut an object's gzip bytes; record where its damage starts (complete lines before it)."""
    cut = data[: int(len(data) * fraction)]
    prefix = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(cut)
    complete = prefix.count(b"\n")
    written.readable = complete
    written.size = len(cut)
    written.truncation = {
        "key": written.key,
        "hour_folder": written.folder,
        "lines_written": len(written.lines),
        "complete_lines_before_damage": complete,
        "lines_lost": len(written.lines) - complete,
        "bytes_written": len(cut),
        "bytes_complete": len(data),
    }
    return cut


def _empty_objects(
    bucket: Path,
    site: DemoSite,
    hours: list[float],
    noise: NoiseSettings,
    rng: np.random.Generator,
    part: tuple[int, int] | None = None,
) -> list[WrittenObject]:
    objects = []
    if not hours:
        return objects
    suffix = f"-part{part[0]}of{part[1]}" if part else ""
    for i in range(noise.empty_objects):
        hour = datetime.fromtimestamp(hours[int(rng.integers(len(hours)))], UTC)
        folder_name = hour_folder(hour)
        target = bucket / folder_name / f"{site.name}-{hour:%Y%m%d%H}{suffix}-{i + 1}.jsonl.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
        objects.append(WrittenObject(f"{folder_name}/{target.name}", folder_name, [], 0, size=0))
    return objects


def _write_truth(site_dir: Path, truth: dict, table) -> dict:
    site_dir.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    (site_dir / GROUND_TRUTH_FILE).write_bytes(data)
    pq.write_table(table, site_dir / PAGE_VIEWS_TRUTH_FILE, compression="zstd")
    # What the file says, exactly (lists rather than tuples, keys sorted).
    return orjson.loads(data)


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

"""A site's demo traffic as GA4's BigQuery export (ingestion/ga4.py reads it back).

The readers, sessions and page views are the clickstream generator's (clean human web traffic,
`generate_site(noise=None)`), so a GA4 site reads like a Snowplow one. Each page view's engaged
time is the span from the page view to its last heartbeat; GA4 reports it as its tags do: a
`scroll` halfway through a page read for 20 s or more carries the first half, and the rest is
reported either by a `user_engagement` as the reader leaves the page, or (in a share of the
sessions, as a single-page app's history changes do) by the next page view of the session. The
total written for a page is its engaged time exactly, in whole milliseconds.

Tables: a property date (`events.ga4.timezone`) that ended by `daily_until` is written as its
daily table `events_YYYYMMDD`, a later one as `events_intraday_YYYYMMDD`; one gzip JSON-lines
file per table, named as BigQuery's export names its shards.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from article_rec_assets.ingestion.bucket import site_bucket_dir
from article_rec_assets.ingestion.compression import complete_lines, decompress
from article_rec_assets.ingestion.ga4 import DAILY, INTRADAY, table_folder
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.sites import DemoSite

SHARD_NAME = "000000000000.json.gz"
SPA_SESSION_SHARE = 0.3  # sessions whose page views carry the time of the page before
SCROLL_AFTER_SECONDS = 20.0


def ga4_event(
    name: str,
    when: datetime,
    reader: str | None,
    session: int | None,
    location: str | None,
    engagement_msec: int | None = None,
    referrer: str | None = None,
    device: dict | None = None,
    batch: tuple[int, int, int] | None = None,
) -> dict:
    """One GA4 export record, as BigQuery writes it to JSON (INT64 values as text). `batch`:
    (batch_page_id, batch_ordering_id, batch_event_index), the order the page sent it in."""
    params = []
    if location is not None:
        params.append({"key": "page_location", "value": {"string_value": location}})
    if referrer is not None:
        params.append({"key": "page_referrer", "value": {"string_value": referrer}})
    if session is not None:
        params.append({"key": "ga_session_id", "value": {"int_value": str(session)}})
    if engagement_msec is not None:
        params.append({"key": "engagement_time_msec", "value": {"int_value": str(engagement_msec)}})
    micros = round(when.timestamp() * 1_000_000)
    ordering = {}
    if batch is not None:
        names = ("batch_page_id", "batch_ordering_id", "batch_event_index")
        ordering = {name: str(value) for name, value in zip(names, batch, strict=True)}
    return {
        **ordering,
        "event_date": f"{when:%Y%m%d}",
        "event_timestamp": str(micros),
        "event_name": name,
        "event_params": params,
        "user_pseudo_id": reader,
        "privacy_info": {"analytics_storage": "Yes", "ads_storage": "Yes", "uses_transient_token": "No"},
        "device": device
        or {"category": "desktop", "operating_system": "Linux", "web_info": {"browser": "Chrome"}},
        "geo": {"country": "United States"},
        "platform": "WEB",
        "stream_id": "1000000001",
    }


def write_ga4_table(
    data_dir: Path, site: DemoSite, table: str, day: datetime, records: list[dict], name: str = SHARD_NAME
) -> Path:
    """One file of a day's table in the site's local bucket (its folder made as needed)."""
    if site.events.ga4 is None:
        raise ValueError(f"site {site.name!r} has no `events.ga4` settings")
    folder = data_dir / "buckets" / site.events.bucket / table_folder(site.events.ga4, table, day.date())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    payload = b"".join(orjson.dumps(record) + b"\n" for record in records)
    target.write_bytes(gzip.compress(payload, mtime=0) if name.endswith(".gz") else payload)
    return target


@dataclass
class GA4Summary:
    site: str
    page_views: int
    records: int
    tables: dict[str, str]  # property date -> table written
    engaged_seconds: float  # all the engagement written, in seconds


def generate_ga4_site(
    site: SiteConfig,
    data_dir: Path,
    start: datetime,
    end: datetime,
    seed: int | None = None,
    daily_until: datetime | None = None,
    world: tuple[datetime, datetime] | None = None,
) -> GA4Summary:
    """Write `start`..`end` of the site's traffic as a GA4 export (and its catalogue). `world`:
    as for `generate_site`, the span the articles and readers are drawn for."""
    if site.events.ga4 is None:
        raise ValueError(f"site {site.name!r} has no `events.ga4` settings")
    with tempfile.TemporaryDirectory() as scratch:
        generate_site(site, Path(scratch), start, end, seed, noise=None, world=world)
        catalogue = Path(scratch) / site.articles.catalogue.path
        (data_dir / site.articles.catalogue.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(catalogue, data_dir / site.articles.catalogue.path)
        return snowplow_to_ga4(site, Path(scratch), data_dir, end, daily_until)


def snowplow_to_ga4(
    site: DemoSite, snowplow_dir: Path, data_dir: Path, end: datetime, daily_until: datetime | None = None
) -> GA4Summary:
    """The clean web traffic `generate_site(noise=None)` wrote under `snowplow_dir`, written again
    under `data_dir` as the site's GA4 export (see the module's docstring)."""
    if site.events.ga4 is None:
        raise ValueError(f"site {site.name!r} has no `events.ga4` settings")
    zone = ZoneInfo(site.events.ga4.timezone)
    daily_until = end if daily_until is None else daily_until
    views = _page_views(site_bucket_dir(snowplow_dir, site))
    records, engaged = _records(views, end)
    by_day: dict[datetime, list[dict]] = defaultdict(list)
    for record in records:
        when = datetime.fromtimestamp(int(record["event_timestamp"]) / 1e6, zone)
        by_day[datetime(when.year, when.month, when.day, tzinfo=zone)].append(record)
    tables = {}
    for day, day_records in sorted(by_day.items()):
        table = DAILY if day + timedelta(days=1) <= daily_until else INTRADAY
        write_ga4_table(data_dir, site, table, day, day_records)
        tables[f"{day:%Y-%m-%d}"] = table
    return GA4Summary(site.name, len(views), len(records), tables, engaged)


@dataclass
class _View:
    reader: str
    session: str
    url: str
    useragent: str
    start: float
    last: float


def _page_views(bucket: Path) -> list[_View]:
    """The generated web page views, each with the time of its last heartbeat."""
    views: dict[str, _View] = {}
    for path in sorted(bucket.rglob("*.jsonl.gz")):
        text, intact, _ = decompress(path.read_bytes())
        for line in complete_lines(text, intact):
            event = orjson.loads(line)
            view_id = event["contexts_com_snowplowanalytics_snowplow_web_page_1"][0]["id"]
            at = datetime.fromisoformat(event["dvce_created_tstamp"].replace("Z", "+00:00")).timestamp()
            if event["event_name"] == "page_view":
                view = views.get(view_id)
                last = max(at, view.last) if view else at
                views[view_id] = _View(
                    event["domain_userid"],
                    event["domain_sessionid"],
                    event["page_url"],
                    event["useragent"],
                    at,
                    last,
                )
            elif view_id in views:
                views[view_id].last = max(views[view_id].last, at)
            else:  # a ping read before its page view (another hour's object): keep its time
                views[view_id] = _View("", "", "", "", float("inf"), at)
    return sorted((v for v in views.values() if v.url), key=lambda v: (v.session, v.start))


def _records(views: list[_View], end: datetime) -> tuple[list[dict], float]:
    sessions: dict[str, list[_View]] = defaultdict(list)
    for view in views:
        sessions[view.session].append(view)
    records: list[dict] = []
    limit = end.timestamp()
    for session_key, pages in sessions.items():
        reader = _pseudo_id(pages[0].reader)
        session = int(pages[0].start)
        spa = int(hashlib.sha1(session_key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < SPA_SESSION_SHARE
        device = _device(pages[0].useragent)
        carried, previous = 0, None
        for page in pages:
            engaged = round((page.last - page.start) * 1000)
            records.append(
                ga4_event(
                    "page_view",
                    _at(page.start),
                    reader,
                    session,
                    page.url,
                    carried if carried else None,
                    previous,
                    device,
                )
            )
            carried = 0
            half = engaged // 2 if engaged / 1000 >= SCROLL_AFTER_SECONDS else 0
            if half:
                records.append(
                    ga4_event(
                        "scroll", _at(page.start + half / 1000), reader, session, page.url, half, None, device
                    )
                )
            rest = engaged - half
            if spa and page is not pages[-1]:
                carried = rest  # reported by the next page view
            elif rest and page.last < limit:
                records.append(
                    ga4_event(
                        "user_engagement", _at(page.last), reader, session, page.url, rest, None, device
                    )
                )
            previous = page.url
    records = [r for r in records if int(r["event_timestamp"]) < limit * 1_000_000]
    return records, sum(_msec(r) for r in records) / 1000


def _msec(record: dict) -> int:
    for param in record["event_params"]:
        if param["key"] == "engagement_time_msec":
            return int(param["value"]["int_value"])
    return 0


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _pseudo_id(reader: str) -> str:
    digest = hashlib.sha1(reader.encode()).hexdigest()
    return f"{int(digest[:8], 16)}.{1_600_000_000 + int(digest[8:14], 16) % 100_000_000}"


def _device(useragent: str) -> dict:
    mobile = "Mobile" in useragent or "iPhone" in useragent or "Android" in useragent
    browser = next((b for b in ("Firefox", "Edg", "Chrome", "Safari") if b in useragent), "Other")
    system = next(
        (s for s in ("Windows", "Mac OS X", "Android", "iPhone", "Linux") if s in useragent), "Other"
    )
    return {
        "category": "mobile" if mobile else "desktop",
        "operating_system": system,
        "web_info": {"browser": {"Edg": "Edge"}.get(browser, browser)},
    }

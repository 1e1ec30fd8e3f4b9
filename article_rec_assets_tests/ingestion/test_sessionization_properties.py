"""Property: how Snowplow happens to deliver a window's events does not change what they count for.

For a generated set of events (web readers with page views and pings, an AMP reader, a bot, a
staging host, pages that are not articles), each rendered as a JSON or an enriched TSV line, the
sessionized interactions must not change when the lines are shuffled, split over several objects
(some gzipped), duplicated (Snowplow delivers at least once), mixed with unusable lines, or
rendered in the other format. The interactions are also checked against an oracle computed
straight from the generated events with Snowplow's web model (a seeded loop of random cases; no
extra test dependency).
"""

from __future__ import annotations

import gzip
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
import pytest

from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.settings.sites import SiteConfig, load_sites
from article_rec_assets_tests.support import CONTRACT_TSV_POSITIONS

SEEDS = range(20)
HOST = "democitypaper.example"
AMP_CACHE_HOST = "democitypaper-example.cdn.ampproject.org"
START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # every event falls on 2024-05-01 (UTC)
HEARTBEAT, MIN_VISIT = 10, 5
SESSION_TIMEOUT = timedelta(minutes=30)
TSV_POS = CONTRACT_TSV_POSITIONS
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
JUNK = [b'{"event_id": "cut', b"not\ta\tsnowplow\tline", b'{"event_name": "page_view"}', b"\xff\xfe\xfd"]


@pytest.fixture(scope="module")
def site() -> SiteConfig:
    return load_sites()["demo-city-paper"]


@dataclass
class Event:
    event_id: str
    name: str
    created: datetime
    collected: datetime
    reader: str | None = None  # domain_userid
    session: str | None = None  # domain_sessionid
    amp_client: str | None = None
    page_view: str | None = None  # web_page context id
    amp_page_view: str | None = None
    host: str | None = HOST
    path: str | None = None
    url: str | None = None  # instead of host and path
    useragent: str = BROWSER
    total_engaged: float | None = None
    # What the oracle needs: does it count, for which article, and (AMP) in which session.
    counts: bool = True
    article: str | None = None
    session_name: str | None = None


@dataclass
class Generated:
    events: list[Event] = field(default_factory=list)


def _ms(rng: random.Random) -> timedelta:
    return timedelta(milliseconds=rng.randrange(1000))


def _window(at: datetime) -> int:
    return int(at.timestamp()) // HEARTBEAT


def generate(rng: random.Random) -> Generated:
    out = Generated()
    ids = iter(uuid.UUID(int=rng.getrandbits(128)) for _ in range(10_000))

    def new_event(name: str, created: datetime, **fields) -> Event:
        # Collector delays up to 20 s, so collector order differs from device order.
        collected = created + timedelta(seconds=rng.uniform(0, 20))
        collected -= timedelta(microseconds=collected.microsecond % 1000)
        event = Event(str(next(ids)), name, created, collected, **fields)
        out.events.append(event)
        return event

    def web_page_view(
        reader: str, session: str, at: datetime, article: int, counts: bool = True, **kw
    ) -> None:
        path = f"/article/{article}/story-{article}/"
        use_context = rng.random() < 0.8  # else the page view is (reader, session, path)
        page_view = f"pv-{next(ids)}" if use_context else None
        style = rng.choice(["plain", "query", "amp_suffix"] + ([] if "host" in kw else ["url"]))
        where = {"path": path}
        if style == "url":
            where = {"host": None, "url": f"https://{HOST}{path}?utm_source=newsletter"}
        elif style == "query":
            where = {"path": f"{path}?ref=home#comments"}
        elif style == "amp_suffix":
            where = {"path": f"{path}amp"}
        common = {"reader": reader, "session": session, "page_view": page_view, **where, **kw}
        new_event("page_view", at, counts=counts, article=str(article), **common)
        t = at + timedelta(seconds=5)
        for _ in range(rng.randrange(0, 8)):
            # Steps of 0 or 3 s put two pings in one heartbeat window, 17 or 30 s skip windows.
            t += timedelta(seconds=rng.choice([0, 3, 10, 10, 10, 17, 30]))
            new_event("page_ping", t + _ms(rng), counts=counts, article=str(article), **common)
        # Link clicks never count.
        if rng.random() < 0.3:
            new_event("link_click", at + timedelta(seconds=2), reader=reader, session=session, counts=False)

    # Web readers: one or two sessions each, one to three page views per session.
    for r in range(rng.randrange(2, 5)):
        reader = f"web-{r}"
        at = START + timedelta(minutes=rng.randrange(0, 60), seconds=rng.randrange(60)) + _ms(rng)
        for s in range(rng.randrange(1, 3)):
            session = f"{reader}-s{s}"
            for _ in range(rng.randrange(1, 4)):
                web_page_view(reader, session, at, rng.randrange(101, 106))
                at += timedelta(minutes=rng.randrange(2, 6))
            at += timedelta(hours=1)

    # Things that never count: a bot, a staging host, a page that is not an article.
    web_page_view("bot-1", "bot-s", START + timedelta(minutes=5), 101, counts=False, useragent=BOT)
    web_page_view(
        "stager", "stage-s", START + timedelta(minutes=7), 102, counts=False, host="staging." + HOST
    )
    new_event(
        "page_view",
        START + timedelta(minutes=9),
        reader="web-0",
        session="web-0-s0",
        path="/about/",
        counts=False,
    )

    # The AMP reader: no session id; sessions inferred after 30 minutes without events.
    amp_events: list[Event] = []
    at = START + timedelta(minutes=rng.randrange(0, 30)) + _ms(rng)
    for _ in range(rng.randrange(1, 5)):
        article = rng.randrange(101, 106)
        amp_page_view = f"apv-{next(ids)}"
        cached = rng.random() < 0.5
        where = (
            {"host": AMP_CACHE_HOST, "path": f"/c/s/{HOST}/article/{article}/story-{article}/amp/"}
            if cached
            else {"path": f"/article/{article}/story-{article}/amp"}
        )
        common = {
            "amp_client": "amp-reader",
            "amp_page_view": amp_page_view,
            "article": str(article),
            **where,
        }
        amp_events.append(new_event("amp_page_view", at, **common))
        total = 0.0
        t = at
        for _ in range(rng.randrange(0, 6)):
            t += timedelta(seconds=10) + _ms(rng)
            total += rng.choice([0.0, 0.0, 4.0, 10.0, 2.5])
            amp_events.append(new_event("amp_page_ping", t, total_engaged=total, **common))
        at = t + rng.choice([timedelta(minutes=3), timedelta(minutes=25), timedelta(hours=1)])

    # Sessions of the AMP reader, as the tracker would have named them.
    amp_events.sort(key=lambda e: e.created)
    session_start = None
    previous = None
    for e in amp_events:
        if previous is None or e.created - previous > SESSION_TIMEOUT:
            session_start = e.created
        previous = e.created
        e.session_name = f"amp-reader:{int(session_start.timestamp())}"
    return out


def oracle(generated: Generated) -> pd.DataFrame:
    """(reader, session, external_id) -> page_views, pings, engaged_seconds, from the generated
    events alone: web engaged time is 10 x (distinct windows - 1) + 5 per page view, AMP engaged
    time the highest totalEngagedTime per page view."""
    page_views: dict[tuple, dict] = {}
    for e in generated.events:
        if not e.counts or e.name not in ("page_view", "page_ping", "amp_page_view", "amp_page_ping"):
            continue
        if e.amp_client:
            reader, session, key = e.amp_client, e.session_name, e.amp_page_view
        else:
            reader, session = e.reader, e.session
            key = e.page_view or (reader, session, e.article)
        new = {"row": (reader, session, e.article), "views": 0, "pings": 0, "windows": set(), "amp": 0.0}
        pv = page_views.setdefault(key, new)
        if e.name.endswith("page_view"):
            pv["views"] += 1
        else:
            pv["pings"] += 1
            if e.amp_client:
                pv["amp"] = max(pv["amp"], e.total_engaged or 0.0)
            else:
                pv["windows"].add(_window(e.created))
    rows: dict[tuple, list[float]] = {}
    for pv in page_views.values():
        row = rows.setdefault(pv["row"], [0, 0, 0.0])
        row[0] += pv["views"]
        row[1] += pv["pings"]
        windows = len(pv["windows"])
        row[2] += pv["amp"] + (HEARTBEAT * (windows - 1) + MIN_VISIT if windows else 0.0)
    frame = pd.DataFrame(
        [(*key, *values) for key, values in rows.items()],
        columns=["reader_id", "session_id", "external_id", "page_views", "pings", "engaged_seconds"],
    )
    return frame.sort_values(["reader_id", "session_id", "external_id"]).reset_index(drop=True)


# --- rendering -------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _tsv_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond:06d}000"


def _page_fields(e: Event) -> dict[str, str]:
    if e.url:
        return {"page_url": e.url}
    fields = {"page_urlpath": e.path} if e.path else {}
    if e.host:
        fields["page_urlhost"] = e.host
    return fields


def render_json(e: Event) -> bytes:
    record: dict[str, object] = {
        "app_id": "city",
        "platform": "web",
        "event_id": e.event_id,
        "event_name": e.name,
        "collector_tstamp": _iso(e.collected),
        "dvce_created_tstamp": _iso(e.created),
        "useragent": e.useragent,
        **_page_fields(e),
    }
    if e.reader:
        record["domain_userid"] = e.reader
    if e.session:
        record["domain_sessionid"] = e.session
    if e.page_view:
        record["contexts_com_snowplowanalytics_snowplow_web_page_1"] = [{"id": e.page_view}]
    if e.amp_client:
        record["contexts_dev_amp_snowplow_amp_id_1"] = [{"ampClientId": e.amp_client}]
        record["contexts_dev_amp_snowplow_amp_web_page_1"] = [{"ampPageViewId": e.amp_page_view}]
    if e.total_engaged is not None:
        record["unstruct_event_dev_amp_snowplow_amp_page_ping_1"] = {"totalEngagedTime": e.total_engaged}
    return orjson.dumps(record)


def _iglu(name: str, data: object) -> dict:
    return {"schema": f"iglu:{name}/jsonschema/1-0-0", "data": data}


def render_tsv(e: Event) -> bytes:
    values = [""] * 131
    fields = {
        "app_id": "city",
        "platform": "web",
        "event_id": e.event_id,
        "event": "unstruct" if e.name.startswith("amp_") or e.name == "link_click" else e.name,
        "event_name": e.name,
        "collector_tstamp": _tsv_time(e.collected),
        "dvce_created_tstamp": _tsv_time(e.created),
        "useragent": e.useragent,
        "domain_userid": e.reader or "",
        "domain_sessionid": e.session or "",
        **_page_fields(e),
    }
    contexts = []
    if e.page_view:
        contexts.append(_iglu("com.snowplowanalytics.snowplow/web_page", {"id": e.page_view}))
    if e.amp_client:
        contexts.append(_iglu("dev.amp.snowplow/amp_id", {"ampClientId": e.amp_client}))
        contexts.append(_iglu("dev.amp.snowplow/amp_web_page", {"ampPageViewId": e.amp_page_view}))
    if contexts:
        fields["contexts"] = orjson.dumps(_iglu("com.snowplowanalytics.snowplow/contexts", contexts)).decode()
    if e.total_engaged is not None:
        ping = _iglu("dev.amp.snowplow/amp_page_ping", {"totalEngagedTime": e.total_engaged})
        unstruct = _iglu("com.snowplowanalytics.snowplow/unstruct_event", ping)
        fields["unstruct_event"] = orjson.dumps(unstruct).decode()
    for name, value in fields.items():
        values[TSV_POS[name]] = value
    return "\t".join(values).encode()


def render(e: Event, as_tsv: bool) -> bytes:
    return render_tsv(e) if as_tsv else render_json(e)


def deliver(rng: random.Random, lines: list[bytes], junk: int) -> list[tuple[str, bytes]]:
    """Shuffle, duplicate some lines, add `junk` unusable ones, split over objects, gzip some."""
    delivered = list(lines) + [rng.choice(lines) for _ in range(rng.randrange(1, max(2, len(lines) // 4)))]
    delivered += rng.sample(JUNK, junk)
    rng.shuffle(delivered)
    cuts = sorted(rng.sample(range(1, len(delivered)), min(len(delivered) - 1, rng.randrange(1, 5))))
    objects = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(delivered)], strict=True)):
        body = b"\n".join(delivered[a:b]) + (b"\n" if rng.random() < 0.5 else b"")
        key = f"enriched/good/2024/05/01/10/part-{i}"
        objects.append((key + ".gz", gzip.compress(body)) if rng.random() < 0.5 else (key, body))
    return objects


def interactions(objects: list[tuple[str, bytes]], site: SiteConfig):
    parsed = parse_objects(objects)
    cleaned = clean_window(parsed, parse_objects([]), site.events)
    return parsed, cleaned, sessionize(cleaned.events, site)


# --- the property ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_delivery_does_not_change_the_sessionized_output(site, seed):
    rng = random.Random(seed)
    generated = generate(rng)
    formats = [rng.random() < 0.5 for _ in generated.events]  # True: TSV
    lines = [render(e, tsv) for e, tsv in zip(generated.events, formats, strict=True)]

    base_parsed, base_cleaned, base = interactions([("all-in-one", b"\n".join(lines))], site)
    assert base_parsed.rejects.empty
    assert base_cleaned.duplicates == {"duplicate_in_window": 0, "delivered_in_earlier_window": 0}

    # The output agrees with the oracle computed from the generated events.
    got = base.interactions[
        ["reader_id", "session_id", "external_id", "page_views", "pings", "engaged_seconds"]
    ]
    got = got.astype({"reader_id": object, "session_id": object, "external_id": object})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), oracle(generated), check_dtype=False)
    assert (base.interactions["ping_dwell_seconds"] == base.interactions["pings"] * 10.0).all()
    assert set(base.filtered) <= {"other_event_type", "bot_useragent", "host_not_allowed", "not_an_article"}
    assert base.filtered["bot_useragent"] >= 1 and base.filtered["host_not_allowed"] >= 1
    assert "amp-reader" in set(base.interactions["reader_id"])
    assert any(formats) and not all(formats)  # both formats occur

    # Delivered again: each event re-rendered in a format drawn anew, the lines shuffled, some
    # duplicated, split over objects (some gzipped), and on even seeds unusable lines among them.
    redrawn = [render(e, rng.random() < 0.5) for e in generated.events]
    junk = rng.randrange(1, len(JUNK) + 1) if seed % 2 == 0 else 0
    parsed, cleaned, result = interactions(deliver(rng, redrawn, junk), site)
    pd.testing.assert_frame_equal(result.interactions, base.interactions)
    assert result.filtered == base.filtered
    copies = int((parsed.events["event_id"].value_counts() - 1).sum())
    assert copies >= 1
    assert cleaned.duplicates == {"duplicate_in_window": copies, "delivered_in_earlier_window": 0}
    assert len(parsed.rejects) == junk

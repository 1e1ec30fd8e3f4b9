"""The demo clickstream generator without noise: deterministic, laid out like Snowplow's S3 loader,
realistic pings. (The noise has its own tests, in test_noise.py.)"""

import gzip
import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest

from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.settings.sites import SiteConfig, load_sites
from article_rec_demo.generator.clickstream import (
    DEFAULT_NOISE,
    NON_ARTICLE_PATHS,
    GenerationSummary,
    draw_readership,
    generate_site,
)
from article_rec_demo.sites import load_demo_sites

START = datetime(2024, 5, 1, 8, tzinfo=UTC)
END = datetime(2024, 5, 1, 11, tzinfo=UTC)
HOURS = ("08", "09", "10")
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"


@pytest.fixture(scope="module")
def small_site() -> SiteConfig:
    """demo-city-paper with a smaller audience and backlist, so a few hours generate quickly."""
    site = load_demo_sites()["demo-city-paper"]
    demo = site.demo.model_copy(
        update={"readers": 200, "sessions_per_day": 400, "backlist_days": 2, "articles_per_day": 10}
    )
    return site.model_copy(update={"demo": demo})


@pytest.fixture(scope="module")
def generated(small_site, tmp_path_factory) -> tuple[Path, GenerationSummary]:
    data_dir = tmp_path_factory.mktemp("clickstream")
    return data_dir, generate_site(small_site, data_dir, START, END, noise=None)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def event_files(data_dir: Path, site: SiteConfig) -> list[Path]:
    return sorted(site_bucket_dir(data_dir, site).rglob("*.jsonl.gz"))


def read_events(data_dir: Path, site: SiteConfig) -> list[dict]:
    events = []
    for path in event_files(data_dir, site):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            event = orjson.loads(line)
            event["_file"] = path
            events.append(event)
    return events


def epoch(text: str) -> float:
    return pd.Timestamp(text).timestamp()


def test_hour_folder_and_bucket_dir(tmp_path):
    assert hour_folder(datetime(2024, 5, 1, 8, tzinfo=UTC)) == "enriched/good/2024/05/01/08"
    assert hour_folder(datetime(2024, 12, 31, 23, tzinfo=UTC)) == "enriched/good/2024/12/31/23"
    sites = load_demo_sites()
    assert (
        site_bucket_dir(tmp_path, sites["demo-city-paper"]) == tmp_path / "buckets" / "demo-city-paper-events"
    )
    assert (
        site_bucket_dir(tmp_path, sites["demo-tribune"])
        == tmp_path / "buckets" / "demo-tribune-events" / "snowplow"
    )


def test_same_seed_writes_identical_bytes(generated, small_site, tmp_path):
    data_dir, summary = generated
    again = generate_site(small_site, tmp_path, START, END, noise=None)
    first, second = all_files(data_dir), all_files(tmp_path)
    assert len(first) == 6  # 3 hour files, the catalogue and the two ground-truth files
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name
    assert again == summary


def test_another_seed_writes_other_events(generated, small_site, tmp_path):
    data_dir, _ = generated
    other = tmp_path / "other"
    generate_site(small_site, other, START, END, seed=12345, noise=None)
    first, second = all_files(data_dir), all_files(other)
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_a_span_written_piece_by_piece_keeps_one_site(generated, small_site, tmp_path):
    """`world`: hour by hour, the same catalogue and readers as one call over the span, and
    pieces that do not repeat each other's random draws."""
    data_dir, _ = generated
    pieces = tmp_path / "pieces"
    for hour in range(3):
        piece_start = START.replace(hour=START.hour + hour)
        generate_site(
            small_site,
            pieces,
            piece_start,
            piece_start.replace(hour=piece_start.hour + 1),
            noise=None,
            world=(START, END),
        )
    whole, split = all_files(data_dir), all_files(pieces)
    catalogue = "demo-city-paper/catalogue.jsonl"
    assert split[catalogue] == whole[catalogue]
    events = parse_objects([(str(p), p.read_bytes()) for p in event_files(pieces, small_site)]).events
    assert events.groupby(events["collector_tstamp"].dt.hour).size().index.tolist() == [8, 9, 10]
    views = events[events["event_name"] == "page_view"]
    readers = draw_readership(small_site.demo, START, END, small_site.demo.seed).reader_ids
    assert set(views["domain_userid"]) <= set(readers)
    assert views["event_id"].is_unique and views["domain_sessionid"].nunique() > 3
    # Each hour's sessions are its own draws, not the first hour's again.
    first_hour = views[views["collector_tstamp"].dt.hour == 8]
    later = views[views["collector_tstamp"].dt.hour > 8]
    assert not set(first_hour["domain_sessionid"]) & set(later["domain_sessionid"])


def test_an_hour_written_in_parts_splits_its_sessions_between_them(small_site, tmp_path):
    """`part`: each call writes its own share of the hour's sessions (over the same readers), in
    objects of its own, the same bytes when written again; the parts together are about an hour."""
    hour_end = START.replace(hour=START.hour + 1)

    def write(folder: Path, part: tuple[int, int] | None, noise=None):
        return generate_site(small_site, folder, START, hour_end, noise=noise, world=(START, END), part=part)

    whole = write(tmp_path / "whole", None)
    parts = [write(tmp_path / "parts", (i, 3)) for i in range(3)]
    names = sorted(p.name for p in event_files(tmp_path / "parts", small_site))
    assert names == [f"demo-city-paper-2024050108-part{i}of3.jsonl.gz" for i in range(3)]
    sessions = [p.sessions for p in parts]
    assert all(s > 0 for s in sessions) and 0.7 * whole.sessions < sum(sessions) < 1.3 * whole.sessions
    events = parse_objects(
        [(str(p), p.read_bytes()) for p in event_files(tmp_path / "parts", small_site)]
    ).events
    views = events[events["event_name"] == "page_view"]
    assert views["domain_sessionid"].nunique() == sum(sessions)  # no session in two parts
    readers = draw_readership(small_site.demo, START, END, small_site.demo.seed).reader_ids
    assert set(views["domain_userid"]) <= set(readers)
    again = write(tmp_path / "again", (1, 3))
    assert (again.sessions, again.events) == (parts[1].sessions, parts[1].events)
    first = next(p for p in event_files(tmp_path / "parts", small_site) if "part1of3" in p.name)
    second = next(p for p in event_files(tmp_path / "again", small_site) if "part1of3" in p.name)
    assert gzip.decompress(first.read_bytes()) == gzip.decompress(second.read_bytes())
    with_noise = write(tmp_path / "noisy", (0, 2), noise=DEFAULT_NOISE)
    assert with_noise.events > 0
    with pytest.raises(ValueError, match="give world="):
        generate_site(small_site, tmp_path / "bad", START, hour_end, part=(0, 2))


# What the generator wrote before it had noise (sha256 of the decompressed hour files and of the
# catalogue): `noise=None` must keep writing exactly these bytes.
CLEAN_DIGESTS = {
    "demo-city-paper-2024050108.jsonl.gz": "b274e92c5f7d732b05b92a5fb21cbc5c",
    "demo-city-paper-2024050109.jsonl.gz": "6122240c3a2962d906990c845c6dbec7",
    "demo-city-paper-2024050110.jsonl.gz": "c48a2bf58700e995f666b355a8c5a86a",
    "catalogue.jsonl": "b4f89b57d7acd29b86a574ba66b1e1eb",
}


def test_without_noise_the_bytes_are_those_of_the_clean_generator(generated, small_site):
    data_dir, summary = generated
    digests = {}
    for path in [*event_files(data_dir, small_site), data_dir / "demo-city-paper" / "catalogue.jsonl"]:
        data = path.read_bytes()
        if path.suffix == ".gz":
            # mtime 0 and the file's name in the header, as before.
            assert data[:8] == b"\x1f\x8b\x08\x08\x00\x00\x00\x00"
            assert data[10:].startswith(path.name.removesuffix(".gz").encode() + b"\x00")
            data = gzip.decompress(data)
        digests[path.name] = hashlib.sha256(data).hexdigest()[:32]
    assert digests == CLEAN_DIGESTS
    truth = summary.ground_truth
    assert truth["noise"] is None
    assert truth["lines"] == {"written": summary.events, "readable": summary.events, "lost_to_truncation": 0}
    assert truth["human_web_events"] == summary.events
    assert truth["duplicates"]["extra_copies"] == 0 and truth["quarantined"]["total"] == 0


def test_files_are_laid_out_by_collector_hour(generated, small_site):
    data_dir, summary = generated
    bucket = data_dir / "buckets" / "demo-city-paper-events"
    expected = [
        bucket / f"enriched/good/2024/05/01/{hour}/demo-city-paper-20240501{hour}.jsonl.gz" for hour in HOURS
    ]
    assert event_files(data_dir, small_site) == expected
    assert summary.files == 3

    lines_per_file = defaultdict(int)
    for event in read_events(data_dir, small_site):
        hour = int(event["_file"].parent.name)
        collected = pd.Timestamp(event["collector_tstamp"])
        # Every event sits in the folder of the hour its collector time falls in; none after END.
        assert collected.floor("h") == pd.Timestamp(2024, 5, 1, hour, tz="UTC"), event
        lines_per_file[event["_file"]] += 1
    assert sum(lines_per_file.values()) == summary.events
    assert all(count > 0 for count in lines_per_file.values())


def test_lines_are_sorted_by_collector_time_within_a_file(generated, small_site):
    data_dir, _ = generated
    for path in event_files(data_dir, small_site):
        lines = gzip.decompress(path.read_bytes()).splitlines()
        times = [epoch(orjson.loads(line)["collector_tstamp"]) for line in lines]
        assert times == sorted(times), path


def test_pings_every_10_seconds_after_the_5_second_minimum_visit(generated, small_site):
    data_dir, summary = generated
    by_page_view: dict[str, list[dict]] = defaultdict(list)
    for event in read_events(data_dir, small_site):
        by_page_view[event[WEB_PAGE][0]["id"]].append(event)
    assert len(by_page_view) >= 50

    non_article = 0
    for page_view_id, events in by_page_view.items():
        events.sort(key=lambda e: epoch(e["dvce_created_tstamp"]))
        names = [e["event_name"] for e in events]
        assert names[0] == "page_view", page_view_id
        assert names[1:] == ["page_ping"] * (len(events) - 1), page_view_id
        assert len({(e["domain_userid"], e["domain_sessionid"], e["page_urlpath"]) for e in events}) == 1
        start = epoch(events[0]["dvce_created_tstamp"])
        offsets = [epoch(e["dvce_created_tstamp"]) - start for e in events]
        expected = [0.0] + [5.0 + 10.0 * k for k in range(len(events) - 1)]
        # Timestamps are written to the millisecond: allow 1 ms of rounding.
        assert offsets == pytest.approx(expected, abs=0.0011), page_view_id
        if events[0]["page_urlpath"] in NON_ARTICLE_PATHS:
            non_article += 1
            # Section pages are read 8 s: the view and one ping at 5 s (unless cut off at END).
            assert len(events) <= 2
            if epoch(events[0]["collector_tstamp"]) < END.timestamp() - 60:
                assert len(events) == 2
    assert non_article > 0
    page_view_lines = sum(
        1 for events in by_page_view.values() for e in events if e["event_name"] == "page_view"
    )
    assert page_view_lines == len(by_page_view)
    assert summary.page_views >= page_view_lines  # views past END are counted but not written


def test_events_look_like_snowplow_json(generated, small_site):
    data_dir, _ = generated
    events = read_events(data_dir, small_site)
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events[:200]:
        assert event["app_id"] == "demo-city-paper"
        assert event["platform"] == "web"
        assert event["page_urlhost"] == "democitypaper.example"
        assert event["page_url"] == "https://democitypaper.example" + event["page_urlpath"]
        assert event["event"] == event["event_name"]
        for name in ("dvce_created_tstamp", "collector_tstamp", "derived_tstamp", "dvce_sent_tstamp"):
            assert len(event[name]) == len("2024-05-01T08:00:00.000Z") and event[name].endswith("Z")
        assert epoch(event["dvce_sent_tstamp"]) - epoch(event["dvce_created_tstamp"]) == pytest.approx(
            0.2, abs=0.0011
        )
        assert epoch(event["collector_tstamp"]) >= epoch(event["dvce_created_tstamp"]) - 0.0011


def test_generated_events_parse_and_sessionize(generated, small_site):
    data_dir, summary = generated
    objects = [(str(p), p.read_bytes()) for p in event_files(data_dir, small_site)]
    parsed = parse_objects(objects)
    assert parsed.rejects.empty
    assert len(parsed.events) == summary.events
    assert set(parsed.events["event_name"]) == {"page_view", "page_ping"}

    non_article_events = int(parsed.events["page_urlpath"].isin(NON_ARTICLE_PATHS).sum())
    cleaned = clean_window(parsed, parse_objects([]), small_site.events)
    result = sessionize(cleaned.events, small_site)
    assert result.filtered == {"not_an_article": non_article_events}
    interactions = result.interactions
    # The ground truth's page views are the same reading, one row per page view.
    truth = summary.ground_truth["page_views"]
    assert len(interactions) == truth["rows"]
    assert interactions["engaged_seconds"].sum() == truth["engaged_seconds"]
    assert interactions["pings"].sum() == truth["pings_written"]
    # A session never reopens the same article, so each row is one page view, and since its pings
    # are exactly 10 s apart each falls in its own heartbeat window: engaged = 10 x (pings - 1) + 5.
    assert (interactions["page_views"] == 1).all()
    with_pings = interactions[interactions["pings"] > 0]
    assert (with_pings["engaged_seconds"] == 10 * (with_pings["pings"] - 1) + 5).all()
    assert (interactions.loc[interactions["pings"] == 0, "engaged_seconds"] == 0).all()


def test_catalogue_is_written(generated, small_site):
    data_dir, summary = generated
    path = data_dir / "demo-city-paper" / "catalogue.jsonl"
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(rows) == summary.articles
    # Backlist of 2 days from 2024-04-29 00:00 at 10 a day: 20 articles on 04-29 and 04-30, then
    # those of 05-01 published (06:00-22:00 uniformly) before END at 11:00.
    published = [pd.Timestamp(r["published_at"]) for r in rows]
    assert sum(p < pd.Timestamp("2024-05-01T00:00:00Z") for p in published) == 20
    assert 20 <= len(rows) <= 30
    assert all(p < pd.Timestamp(END) for p in published)
    assert published == sorted(published)
    assert all(r["published_at"].endswith("Z") for r in rows)
    # Ids count up from the site's first id, one per article kept.
    assert sorted(int(r["external_id"]) for r in rows) == list(range(510000, 510000 + len(rows)))
    topics = set(small_site.demo.topics)
    for row in rows:
        match = small_site.path_regex.match(row["path"])
        assert match is not None, row
        assert match["external_id"] == row["external_id"]
        assert row["section"] in topics
        assert row["title"].startswith(row["section"].title() + ": ")
    # Every article page in the events is in the catalogue.
    paths = {r["path"] for r in rows}
    read = {e["page_urlpath"] for e in read_events(data_dir, small_site)} - set(NON_ARTICLE_PATHS)
    assert read and read <= paths


def test_site_without_demo_settings_is_refused(tmp_path):
    site = load_demo_sites()["demo-city-paper"].model_copy(update={"demo": None})
    with pytest.raises(ValueError, match="no generator settings"):
        generate_site(site, tmp_path, START, END, noise=None)
    # A product site is given its generator settings by its name; one without any is refused.
    unknown = load_sites()["demo-city-paper"].model_copy(update={"name": "no-such-demo"})
    with pytest.raises(ValueError, match="no generator settings in article_rec_demo/sites/"):
        generate_site(unknown, tmp_path, START, END, noise=None)

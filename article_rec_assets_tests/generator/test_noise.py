"""The dirty clickstream: every case a real Snowplow bucket has, and a ground truth that matches
what an independent reading of the written files finds.

The reader here is deliberately simple (json / split on tabs / a few checks) and shares no code
with the generator, so the truth is checked against the bytes, not against itself.
"""

import gzip
import json
import re
import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from article_rec_assets.ingestion.bucket import site_bucket_dir
from article_rec_assets.settings.sites import SiteConfig
from article_rec_assets_tests.support import (
    CONTRACT_TSV_POSITIONS,
    SNOWPLOW_SAMPLE,
    TSV_FIELD_COUNT,
    shared_data_or_skip,
)
from article_rec_demo.generator.clickstream import GROUND_TRUTH_FILE, PAGE_VIEWS_TRUTH_FILE, generate_site
from article_rec_demo.generator.noise import MALFORMED_REASONS, NoiseSettings
from article_rec_demo.sites import load_demo_sites

# 90 hours, so that sessions of the first hours can arrive more than 72 hours late.
START = datetime(2024, 5, 1, 6, tzinfo=UTC)
END = datetime(2024, 5, 5, 0, tzinfo=UTC)
# Every case often enough to be seen a few times in a small site's 90 hours.
NOISY = NoiseSettings(
    tsv_share=0.05,
    amp_tsv_share=0.05,
    amp_session_share=0.08,
    duplicate_share=0.01,
    bot_ua_session_share=0.04,
    bot_iab_session_share=0.04,
    empty_ua_session_share=0.04,
    iab_human_session_share=0.1,
    staging_session_share=0.04,
    localhost_session_share=0.04,
    late_session_share=0.05,
    too_late_session_share=0.3,
    malformed_share_per_reason=0.0008,
)

TSV_FIELDS = TSV_FIELD_COUNT
TSV_POS = CONTRACT_TSV_POSITIONS
CONTEXTS, UNSTRUCT, DERIVED_CONTEXTS = 52, 58, 122
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB = "contexts_com_iab_snowplow_spiders_and_robots_1"
# Iglu schema (without version) -> the analytics SDK's key.
SCHEMA_KEYS = {
    "iglu:com.snowplowanalytics.snowplow/web_page": WEB_PAGE,
    "iglu:dev.amp.snowplow/amp_id": AMP_ID,
    "iglu:dev.amp.snowplow/amp_web_page": AMP_PAGE,
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BOT = re.compile(r"bot|crawl|spider|python-requests|headless", re.IGNORECASE)
AMP_CACHE_PATH = re.compile(r"^/[cv]/s/(?P<host>[^/]+)(?P<path>/.*)$")


@pytest.fixture(scope="module")
def site() -> SiteConfig:
    site = load_demo_sites()["demo-city-paper"]
    demo = site.demo.model_copy(
        update={"readers": 200, "sessions_per_day": 160, "backlist_days": 2, "articles_per_day": 10}
    )
    return site.model_copy(update={"demo": demo})


@pytest.fixture(scope="module")
def noisy(site, tmp_path_factory) -> tuple[Path, dict]:
    data_dir = tmp_path_factory.mktemp("noisy")
    summary = generate_site(site, data_dir, START, END, noise=NOISY)
    return data_dir, summary.ground_truth


@pytest.fixture(scope="module")
def reading(noisy, site) -> "Reading":
    data_dir, _ = noisy
    return Reading(site_bucket_dir(data_dir, site), site)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def folder_hour(folder: str) -> datetime:
    return datetime.strptime(folder, "enriched/good/%Y/%m/%d/%H").replace(tzinfo=UTC)


class Reading:
    """The bucket read back line by line, with nothing but json, tabs and a few rules."""

    def __init__(self, bucket: Path, site: SiteConfig) -> None:
        self.site = site
        self.objects: dict[str, dict] = {}
        self.quarantined: Counter[str] = Counter()
        self.quarantined_by_folder: dict[str, Counter[str]] = defaultdict(Counter)
        self.lines_by_folder: Counter[str] = Counter()
        self.events: list[tuple[str, dict, bytes]] = []  # (folder, event, raw line), in order
        keys = sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*") if p.is_file())
        for key in sorted(keys, key=lambda k: (k.rsplit("/", 1)[0], k)):
            folder = key.rsplit("/", 1)[0]
            data = (bucket / key).read_bytes()
            lines, intact = self.gunzip(data)
            self.objects[key] = {"size": len(data), "intact": intact, "lines": len(lines)}
            self.lines_by_folder[folder] += len(lines)
            for raw in lines:
                result = self.classify(raw, folder_hour(folder))
                if isinstance(result, str):
                    self.quarantined[result] += 1
                    self.quarantined_by_folder[folder][result] += 1
                else:
                    self.events.append((folder, result, raw))

    @staticmethod
    def gunzip(data: bytes) -> tuple[list[bytes], bool]:
        if not data:
            return [], True
        try:
            return gzip.decompress(data).split(b"\n")[:-1], True
        except EOFError:
            # Keep the complete lines that decompress before the damage.
            prefix = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data)
            return prefix.split(b"\n")[:-1], False

    @staticmethod
    def classify(raw: bytes, hour: datetime) -> dict | str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "undecodable_bytes"
        if text[:1] in ("{", "[", '"'):
            try:
                event = json.loads(text)
            except ValueError:
                return "invalid_json"
            if not isinstance(event, dict):
                return "not_a_json_object"
            event["_tsv"] = False
        else:
            fields = text.split("\t")
            if len(fields) != TSV_FIELDS:
                return "wrong_field_count"
            event = {name: fields[pos] for name, pos in TSV_POS.items() if fields[pos]}
            for name in ("collector_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp", "derived_tstamp"):
                if name in event:
                    event[name] = event[name].replace(" ", "T") + "Z"
            if fields[CONTEXTS]:
                for item in json.loads(fields[CONTEXTS])["data"]:
                    key = SCHEMA_KEYS[item["schema"].rsplit("/jsonschema/", 1)[0]]
                    event.setdefault(key, []).append(item["data"])
            if fields[UNSTRUCT]:
                inner = json.loads(fields[UNSTRUCT])["data"]
                assert inner["schema"] == "iglu:dev.amp.snowplow/amp_page_ping/jsonschema/1-0-0"
                event[AMP_PING] = inner["data"]
            assert not fields[DERIVED_CONTEXTS]  # the generator keeps IAB-tagged events in JSON
            event["_tsv"] = True
        if not event.get("event_id"):
            return "missing_event_id"
        if not UUID.match(event["event_id"]):
            return "malformed_event_id"
        name = event.get("event_name") or event.get("event")
        if not name:
            return "missing_event_name"
        if not event.get("collector_tstamp"):
            return "missing_timestamp"
        try:
            collected = epoch(event["collector_tstamp"])
        except ValueError:
            return "unparseable_timestamp"
        if collected > (hour + timedelta(days=1)).timestamp():
            return "timestamp_in_future"
        if name in ("page_view", "page_ping") and not event.get("page_urlpath") and not event.get("page_url"):
            return "page_event_without_path"
        event["_name"] = name
        return event

    def distinct(self) -> tuple[list[tuple[str, dict]], int, int]:
        """First copies of each event, and the extra copies (all, and in a later folder)."""
        first: dict[str, tuple[str, bytes]] = {}
        out, extra, later = [], 0, 0
        for folder, event, raw in self.events:
            seen = first.get(event["event_id"])
            if seen is None:
                first[event["event_id"]] = (folder, raw)
                out.append((folder, event))
            else:
                assert raw == seen[1]  # a duplicate is an exact copy
                extra += 1
                later += folder > seen[0]
        return out, extra, later

    def kind(self, event: dict) -> str:
        """bot:ua / bot:iab / bot:empty_ua / host:<internal host> / amp / human."""
        agent = event.get("useragent")
        if not agent:
            return "bot:empty_ua"
        if BOT.search(agent):
            return "bot:ua"
        if event.get(IAB) and event[IAB][0]["spiderOrRobot"]:
            return "bot:iab"
        host = event["page_urlhost"]
        if host.endswith(".cdn.ampproject.org"):
            host = AMP_CACHE_PATH.match(event["page_urlpath"])["host"]
        if host not in self.site.events.allowed_hosts:
            return f"host:{host}"
        return "amp" if AMP_ID in event else "human"

    def external_id(self, event: dict) -> str | None:
        path = event["page_urlpath"]
        if AMP_ID in event:
            cached = AMP_CACHE_PATH.match(path)
            path = cached["path"] if cached else path
            assert path.endswith("/amp"), path
            path = path.removesuffix("/amp") + "/"
        match = self.site.path_regex.match(path)
        return match["external_id"] if match else None


def test_noise_is_deterministic(noisy, site, tmp_path):
    data_dir, truth = noisy
    again = generate_site(site, tmp_path, START, END, noise=NOISY)
    first = {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}
    second = {
        str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()
    }
    assert first.keys() == second.keys()
    assert {GROUND_TRUTH_FILE, PAGE_VIEWS_TRUTH_FILE} <= {Path(k).name for k in first}
    for name in first:
        assert first[name] == second[name], name
    assert again.ground_truth == truth
    assert json.loads(first[f"demo-city-paper/{GROUND_TRUTH_FILE}"]) == truth


def test_ground_truth_sits_beside_the_catalogue_not_in_the_bucket(noisy, site):
    data_dir, _ = noisy
    bucket = site_bucket_dir(data_dir, site)
    assert (data_dir / "demo-city-paper" / GROUND_TRUTH_FILE).is_file()
    assert (data_dir / "demo-city-paper" / PAGE_VIEWS_TRUTH_FILE).is_file()
    assert {p.name for p in bucket.rglob("*") if p.is_file()}.isdisjoint(
        {GROUND_TRUTH_FILE, PAGE_VIEWS_TRUTH_FILE}
    )


def test_every_case_is_present_and_counted_exactly(noisy, reading):
    _, truth = noisy
    distinct, extra, later = reading.distinct()
    kinds = Counter(reading.kind(e) for _, e in distinct)
    late = Counter()
    for folder, event in distinct:
        delay = epoch(event["collector_tstamp"]) - epoch(event["dvce_created_tstamp"])
        if delay > 72 * 3600:
            late["too_late_events"] += 1
        elif delay > 3600:
            late["late_events"] += 1
            # An event collected hours late lands in a later folder than its device time.
            assert folder_hour(folder) > datetime.fromtimestamp(epoch(event["dvce_created_tstamp"]), UTC)

    # Lines, folder by folder.
    assert truth["lines"]["readable"] == sum(reading.lines_by_folder.values())
    assert {f: v["lines_readable"] for f, v in truth["hour_folders"].items()} == dict(reading.lines_by_folder)
    for folder, counts in truth["hour_folders"].items():
        assert counts["quarantined"] == dict(reading.quarantined_by_folder.get(folder, {})), folder
    # Quarantined lines: every reason, a few times each.
    assert truth["quarantined"]["by_reason"] == dict(reading.quarantined)
    assert set(reading.quarantined) == set(MALFORMED_REASONS)
    assert min(reading.quarantined.values()) >= 2
    assert truth["quarantined"]["total"] == sum(reading.quarantined.values())
    # Events by name, with and without duplicate copies.
    assert truth["events_per_event_name"] == dict(Counter(e["_name"] for _, e, _ in reading.events))
    assert truth["distinct_events_per_event_name"] == dict(Counter(e["_name"] for _, e in distinct))
    assert truth["duplicates"] == {"extra_copies": extra, "extra_copies_in_later_folder": later}
    assert 0 < later < extra
    # Bots, internal hosts, AMP, humans.
    assert truth["bots"] == {
        "ua": kinds["bot:ua"],
        "iab": kinds["bot:iab"],
        "empty_ua": kinds["bot:empty_ua"],
    }
    assert min(truth["bots"].values()) > 0
    internal = {k.removeprefix("host:"): v for k, v in kinds.items() if k.startswith("host:")}
    assert truth["staging"] == internal
    assert set(internal) == {"staging.democitypaper.example", "localhost"}
    assert truth["human_web_events"] == kinds["human"]
    amp = Counter(e["_name"] for _, e in distinct if AMP_ID in e)
    assert truth["amp"]["page_views"] == amp["amp_page_view"] > 0
    assert truth["amp"]["pings"] == amp["amp_page_ping"] > 0
    iab_humans = sum(1 for _, e in distinct if e.get(IAB) and not e[IAB][0]["spiderOrRobot"])
    assert truth["iab_not_robot_events"] == iab_humans > 0
    # Late and too late.
    assert truth["late"] == {"late_events": late["late_events"], "too_late_events": late["too_late_events"]}
    assert min(truth["late"].values()) > 0
    # TSV lines.
    tsv_lines = sum(1 for _, e, _ in reading.events if e["_tsv"])
    assert truth["tsv"] == {"lines": tsv_lines, "events": sum(1 for _, e in distinct if e["_tsv"])}
    assert {e["_name"] for _, e, _ in reading.events if e["_tsv"]} == {
        "page_view",
        "page_ping",
        "amp_page_view",
        "amp_page_ping",
    }


def test_truncated_objects_fail_to_gunzip_after_their_complete_lines(noisy, reading):
    data_dir, truth = noisy
    truncated = truth["truncated_objects"]
    assert len(truncated) == 4  # one per generated day (90 hours)
    assert {t["key"] for t in truncated} == {k for k, o in reading.objects.items() if not o["intact"]}
    bucket = data_dir / truth["bucket_dir"]
    for item in truncated:
        data = (bucket / item["key"]).read_bytes()
        with pytest.raises(EOFError):
            gzip.decompress(data)
        assert len(data) == item["bytes_written"]
        assert 0.55 <= item["bytes_written"] / item["bytes_complete"] <= 0.65
        assert reading.objects[item["key"]]["lines"] == item["complete_lines_before_damage"]
        assert item["lines_lost"] == item["lines_written"] - item["complete_lines_before_damage"] > 0
    assert truth["lines"]["lost_to_truncation"] == sum(t["lines_lost"] for t in truncated)
    assert truth["lines"]["written"] == truth["lines"]["readable"] + truth["lines"]["lost_to_truncation"]
    assert truth["lines"]["written"] == sum(f["lines_written"] for f in truth["hour_folders"].values())


def test_an_empty_object_in_some_hour_folder(noisy, reading):
    _, truth = noisy
    assert len(truth["empty_objects"]) == 1
    assert reading.objects[truth["empty_objects"][0]] == {"size": 0, "intact": True, "lines": 0}
    assert sum(1 for o in reading.objects.values() if o["size"] == 0) == 1


def test_page_views_truth_matches_the_events_read_back(noisy, reading):
    data_dir, truth = noisy
    distinct, _, _ = reading.distinct()
    found: dict[str, dict] = {}
    for _, event in distinct:
        if reading.kind(event) not in ("human", "amp") or not reading.external_id(event):
            continue
        amp = AMP_ID in event
        page_view_id = event[AMP_PAGE][0]["ampPageViewId"] if amp else event[WEB_PAGE][0]["id"]
        row = found.setdefault(
            page_view_id,
            {
                "reader_id": event[AMP_ID][0]["ampClientId"] if amp else event["domain_userid"],
                "session_id": "" if amp else event["domain_sessionid"],
                "external_id": reading.external_id(event),
                "is_amp": amp,
                "view_written": False,
                "too_late": False,
                "pings": set(),
                "windows": set(),
                "amp_engaged": 0,
            },
        )
        created = epoch(event["dvce_created_tstamp"])
        row["too_late"] |= epoch(event["collector_tstamp"]) - created > 72 * 3600
        if event["_name"] in ("page_view", "amp_page_view"):
            row["view_written"] = True
            row["day"] = datetime.fromtimestamp(created, UTC).date()
        else:
            row["pings"].add(event["event_id"])
            row["windows"].add(int(created // 10))
            if amp:
                row["amp_engaged"] = max(row["amp_engaged"], event[AMP_PING]["totalEngagedTime"])

    table = pq.read_table(data_dir / "demo-city-paper" / PAGE_VIEWS_TRUTH_FILE).to_pylist()
    assert len(table) == truth["page_views"]["rows"] == len(found)
    for written in table:
        row = found[written["page_view_id"]]
        if row["is_amp"]:
            engaged = row["amp_engaged"]
        else:
            engaged = 10 * (len(row["windows"]) - 1) + 5 if row["windows"] else 0
        assert written == {
            "page_view_id": written["page_view_id"],
            "reader_id": row["reader_id"],
            "session_id": row["session_id"],
            "external_id": row["external_id"],
            "page_view_day": row.get("day", written["page_view_day"]),
            "pings_written": len(row["pings"]),
            "engaged_seconds": engaged,
            "is_amp": row["is_amp"],
            "view_written": row["view_written"],
            "too_late": row["too_late"],
        }
    # Rows of every kind: web and AMP, late and too late, some whose view was lost to truncation.
    assert truth["page_views"]["amp_rows"] > 0
    assert truth["page_views"]["too_late_rows"] > 0
    assert truth["page_views"]["rows_without_view"] > 0
    assert truth["amp"]["readers"] == len({r["reader_id"] for r in table if r["is_amp"]})


def test_amp_engaged_time_grows_slower_than_its_pings(noisy, reading):
    data_dir, _ = noisy
    table = pq.read_table(data_dir / "demo-city-paper" / PAGE_VIEWS_TRUTH_FILE).to_pylist()
    amp = [r for r in table if r["is_amp"]]
    assert all(r["engaged_seconds"] <= 10 * r["pings_written"] for r in amp)
    # The page stays open, idle, after the reader stops: pings outrun engaged time.
    assert sum(r["engaged_seconds"] < 10 * (r["pings_written"] - 2) for r in amp) > len(amp) / 3

    by_page_view: dict[str, list[dict]] = defaultdict(list)
    distinct, _, _ = reading.distinct()
    for _, event in distinct:
        if AMP_ID in event:
            assert "domain_userid" not in event and "domain_sessionid" not in event
            assert event["event"] == "unstruct"
            assert re.fullmatch(r"amp-[A-Za-z0-9_-]{22}", event[AMP_ID][0]["ampClientId"])
            by_page_view[event[AMP_PAGE][0]["ampPageViewId"]].append(event)
    paths = Counter()
    views = defaultdict(list)  # reader -> [(first, last) device times of each page view]
    for events in by_page_view.values():
        events.sort(key=lambda e: epoch(e["dvce_created_tstamp"]))
        pings = [e for e in events if e["_name"] == "amp_page_ping"]
        totals = [e[AMP_PING]["totalEngagedTime"] for e in pings]
        assert totals == sorted(totals)
        # AMP pings fire every 10 s while the page is open.
        times = [epoch(e["dvce_created_tstamp"]) for e in pings]
        assert all(9.9 < b - a < 10.1 for a, b in pairwise(times))
        path = events[0]["page_urlpath"]
        paths[path[:5] if path.startswith(("/c/s/", "/v/s/")) else "site"] += 1
        if events[0]["_name"] == "amp_page_view":
            views[events[0][AMP_ID][0]["ampClientId"]].append(
                (epoch(events[0]["dvce_created_tstamp"]), epoch(events[-1]["dvce_created_tstamp"]))
            )
    assert set(paths) == {"/c/s/", "/v/s/", "site"}
    # Several page views per reader, both within 30 minutes of inactivity and after more.
    gaps = []
    for spans in views.values():
        spans.sort()
        gaps += [b[0] - a[1] for a, b in pairwise(spans)]
    assert max(len(s) for s in views.values()) >= 3
    assert sum(5 * 60 < g < 30 * 60 for g in gaps) > 0
    assert sum(g > 30 * 60 for g in gaps) > 0


def test_bots_internal_hosts_and_tsv_lines_look_real(reading):
    agents = {e.get("useragent") for _, e, _ in reading.events if reading.kind(e) == "bot:ua"}
    assert any("Googlebot" in a for a in agents) and any("python-requests" in a for a in agents)
    assert any("HeadlessChrome" in a for a in agents)
    iab = [e for _, e, _ in reading.events if reading.kind(e) == "bot:iab"]
    assert iab and all(
        e[IAB]
        == [
            {
                "spiderOrRobot": True,
                "category": "SPIDER_OR_ROBOT",
                "reason": "FAILED_UA_INCLUDE",
                "primaryImpact": "UNKNOWN",
            }
        ]
        for e in iab
    )
    empty = [e for _, e, _ in reading.events if reading.kind(e) == "bot:empty_ua"]
    assert empty and all("useragent" not in e for e in empty)
    for _, event, _ in reading.events:
        if event["page_urlhost"] == "localhost":
            assert event["page_url"].startswith("http://localhost:8080/")
        elif not event["page_urlhost"].endswith(".cdn.ampproject.org"):
            assert event["page_url"] == f"https://{event['page_urlhost']}{event['page_urlpath']}"
    tsv = [e for _, e, _ in reading.events if e["_tsv"]]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e[name])
        for e in tsv
        for name in ("collector_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp", "derived_tstamp")
    )
    assert all(WEB_PAGE in e for e in tsv if e["_name"].startswith("page_"))


def test_tsv_lines_are_laid_out_like_snowplows_own(noisy):
    data_dir, truth = noisy
    ours = []
    for path in sorted((data_dir / truth["bucket_dir"]).rglob("*.gz")):
        lines, _ = Reading.gunzip(path.read_bytes())
        ours += [line.decode() for line in lines if line[:1] not in (b"{", b"[", b'"') and b"\t" in line]
    ours = [line.split("\t") for line in ours if line.count("\t") == TSV_FIELDS - 1]
    assert len(ours) == truth["tsv"]["lines"]
    sample_file = shared_data_or_skip(SNOWPLOW_SAMPLE)
    sample = [line.split("\t") for line in sample_file.read_text().splitlines()[2:50]]
    assert all(len(fields) == TSV_FIELDS for fields in sample)
    timestamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+$")
    for fields in sample + ours:
        assert fields[TSV_POS["platform"]] == "web"
        assert UUID.match(fields[TSV_POS["event_id"]])
        assert timestamp.match(fields[TSV_POS["collector_tstamp"]])
        assert fields[TSV_POS["event"]] in ("page_view", "page_ping", "unstruct")
        assert fields[127] == "jsonschema" and fields[128].startswith("1-0-")
        contexts = json.loads(fields[CONTEXTS])
        assert contexts["schema"] == "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
        if fields[TSV_POS["event"]] == "page_view":
            assert fields[TSV_POS["event_name"]] == "page_view"
            assert fields[125] == "com.snowplowanalytics.snowplow"
            assert fields[TSV_POS["page_url"]].endswith(fields[TSV_POS["page_urlpath"]])
    for fields in ours:
        assert len(fields[TSV_POS["collector_tstamp"]]) == len("2024-05-01 06:00:00.000")
        if fields[TSV_POS["event"]] == "page_view":
            page = json.loads(fields[CONTEXTS])["data"][0]
            assert page["schema"] == "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
            assert UUID.match(page["data"]["id"])


def test_default_noise_is_a_sprinkle_over_the_clean_lines(site, tmp_path):
    """The default settings keep malformed lines well under 1 %, and the noise leaves the human
    sessions as the clean generator writes them (bar their TSV, late or IAB-tagged lines)."""
    start, end = datetime(2024, 5, 1, 8, tzinfo=UTC), datetime(2024, 5, 1, 20, tzinfo=UTC)
    clean = generate_site(site, tmp_path / "clean", start, end, noise=None)
    noisy = generate_site(site, tmp_path / "noisy", start, end)
    truth = noisy.ground_truth
    assert truth["quarantined"]["total"] < 0.002 * truth["lines"]["written"]
    assert clean.ground_truth["quarantined"]["total"] == 0
    assert clean.ground_truth["truncated_objects"] == [] and clean.ground_truth["noise"] is None

    def lines(root: Path) -> set[bytes]:
        out: set[bytes] = set()
        for path in site_bucket_dir(root, site).rglob("*.gz"):
            out.update(Reading.gunzip(path.read_bytes())[0])
        return out

    clean_lines, noisy_lines = lines(tmp_path / "clean"), lines(tmp_path / "noisy")
    assert len(clean_lines) == clean.events
    # Lost: the truncated object's tail (a share of one of 12 hours), TSV, late, IAB-tagged lines.
    assert len(clean_lines & noisy_lines) > 0.8 * len(clean_lines)
    assert len(noisy_lines - clean_lines) > 0


def test_noise_settings_are_frozen_and_checked():
    settings = NoiseSettings()
    with pytest.raises(ValueError):
        settings.tsv_share = 0.5
    with pytest.raises(ValueError):
        NoiseSettings(tsv_share=1.5)
    with pytest.raises(ValueError):
        NoiseSettings(bots=0.1)

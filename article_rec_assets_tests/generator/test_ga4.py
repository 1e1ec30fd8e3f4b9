"""The generator's GA4 export: a day's table daily or intraday, the same bytes each time, and the
engaged time it writes as the sum of what its records report."""

from datetime import UTC, datetime, timedelta

import orjson
import yaml

from article_rec_assets.ingestion.compression import complete_lines, decompress
from article_rec_assets.settings.sites import PACKAGED_SITES_DIR, GA4Settings, load_sites
from article_rec_demo.generator.cli import main
from article_rec_demo.generator.ga4 import generate_ga4_site
from article_rec_demo.sites import load_demo_sites

END = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


def ga4_site():
    site = load_demo_sites()["demo-tribune"]
    return site.model_copy(update={"events": site.events.model_copy(update={"ga4": GA4Settings()})})


def test_days_that_ended_are_daily_tables_and_the_rest_intraday(tmp_path) -> None:
    site = ga4_site()
    summary = generate_ga4_site(site, tmp_path / "a", END - timedelta(hours=6), END, daily_until=END)
    assert summary.tables == {"2026-03-03": "events", "2026-03-04": "events_intraday"}
    files = sorted((tmp_path / "a" / "buckets" / site.events.bucket / "ga4").rglob("*.json.gz"))
    assert [f.parent.name for f in files] == ["events_20260303", "events_intraday_20260304"]
    records = [orjson.loads(line) for f in files for line in complete_lines(*decompress(f.read_bytes())[:2])]
    assert len(records) == summary.records and summary.page_views > 0
    assert {r["event_name"] for r in records} == {"page_view", "scroll", "user_engagement"}
    engaged = sum(
        int(p["value"]["int_value"])
        for r in records
        for p in r["event_params"]
        if p["key"] == "engagement_time_msec"
    )
    assert engaged / 1000 == summary.engaged_seconds > 0
    # A page view that reports time reports the page before it (a single-page app's navigation).
    assert any(r["event_name"] == "page_view" and len(r["event_params"]) == 4 for r in records)

    again = generate_ga4_site(site, tmp_path / "b", END - timedelta(hours=6), END, daily_until=END)
    files_b = sorted((tmp_path / "b" / "buckets" / site.events.bucket / "ga4").rglob("*.json.gz"))
    assert again == summary and [f.read_bytes() for f in files_b] == [f.read_bytes() for f in files]


def test_the_command_writes_a_switching_site_in_both_formats(tmp_path) -> None:
    raw = yaml.safe_load((PACKAGED_SITES_DIR / "demo-tribune.yaml").read_text())
    raw["events"]["ga4"] = {"since": "2026-03-03T22:00:00Z"}
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "demo-tribune.yaml").write_text(yaml.safe_dump(raw))
    data = tmp_path / "data"
    main(["--data-dir", str(data), "--end", "2026-03-04T02:00", "--days", "0.25", "--sites-dir", str(sites)])
    bucket = data / "buckets" / raw["events"]["bucket"]
    hours = {"/".join(p.parent.parts[-2:]) for p in (bucket / raw["events"]["prefix"]).rglob("*.jsonl.gz")}
    assert hours == {"03/20", "03/21"}  # the Snowplow hour folders before the switch only
    ga4 = sorted(p.parent.name for p in (bucket / "ga4").rglob("*.json.gz"))
    assert ga4 == ["events_20260303", "events_intraday_20260304"]
    assert (data / load_sites(sites)["demo-tribune"].articles.catalogue.path).is_file()

"""One window of a large site read from GA4's export, against the same traffic read from
Snowplow's folders in the same run (the baseline).

    .venv/bin/python -m bench.bench_ga4_window                 # 1x: the large-site benchmark's site
    .venv/bin/python -m bench.bench_ga4_window --events 0.25 --repeat 3
    .venv/bin/python -m bench.bench_ga4_window --windows 10 22  # the 10:00 and the 22:00 window

The large-site benchmark's site (`bench_large_site`, ~95,000 sessions a day at 1x) writes the day
up to the end of the last window asked for (`--windows`, UTC hours; 10:00 by default) as clean
Snowplow traffic (`generate_site(noise=None)`),
and the same page views as a GA4 intraday table (`generator/ga4.py`). Then, `--repeat` times
each, alternating: the window ingested from Snowplow (`ingest_events`: its hour folders and the
six hours before as context, read from the bucket) and from GA4 (`read_ga4_window`: the day's
table so far, which a window reads whole), parsing it (`ga4`) and with the parse of its files
kept by the day's earlier windows (`ga4-kept`: `io_managers.StoredGA4Parses` in a temporary
folder, primed by reading the window before, untimed). Prints the medians, the ratio GA4 / Snowplow, the
rows each gives and the engaged seconds of the window's articles after `sessionize`, and the load
average beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from upath import UPath

from article_rec_assets.ingestion.ga4 import read_ga4_window
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.ingestion.window_events import ingest_events
from article_rec_assets.io_managers import StoredGA4Parses
from article_rec_assets.io_managers.tables import _ParquetIOManager
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import SiteConfig
from article_rec_demo.generator.clickstream import generate_site
from article_rec_demo.generator.ga4 import snowplow_to_ga4
from bench.bench_large_site import WINDOW, site_yaml


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=float, default=1.0, help="times the 1x site's sessions")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--windows", type=int, nargs="+", default=[WINDOW.hour], help="the windows' start hours (UTC, even)"
    )
    args = parser.parse_args()
    if any(hour % 2 or not 0 <= hour < 24 for hour in args.windows):
        parser.error("--windows takes even hours from 0 to 22")
    raw = site_yaml(args.events, 1.0)
    raw["events"]["ga4"] = {"prefix": "ga4/analytics_1"}
    site = SiteConfig.model_validate(raw)
    day = WINDOW.replace(hour=0)
    starts = [day + timedelta(hours=hour) for hour in sorted(set(args.windows))]
    last_end = starts[-1] + timedelta(hours=2)
    with tempfile.TemporaryDirectory() as scratch:
        snowplow, ga4 = Path(scratch) / "snowplow", Path(scratch) / "ga4"
        began = time.perf_counter()
        generate_site(site, snowplow, day, last_end, noise=None)
        written = snowplow_to_ga4(site, snowplow, ga4, last_end)
        print(
            f"data: {day:%Y-%m-%d %H:%M}..{last_end:%Y-%m-%d %H:%M}, {written.page_views:,} page views, "
            f"{written.records:,} GA4 records, {time.perf_counter() - began:.1f} s to write"
        )
        for start in starts:
            _measure(site, snowplow, ga4, start, start + timedelta(hours=2), args.repeat)


def _measure(
    site: SiteConfig, snowplow: Path, ga4: Path, start: datetime, end: datetime, repeat: int
) -> None:
    snowplow_site = site.model_copy(update={"events": site.events.model_copy(update={"ga4": None})})
    snowplow_bucket, ga4_bucket = EventBucket(root_dir=str(snowplow)), EventBucket(root_dir=str(ga4))
    ga4_readers = (partial(ga4_bucket.folder_keys, site), partial(ga4_bucket.folder_objects, site))
    kept_dir = tempfile.mkdtemp(prefix="ga4-parses-")
    kept = StoredGA4Parses(_ParquetIOManager(base_path=UPath(kept_dir)), "site")
    # As the day's earlier windows leave it: the day's files parsed and kept (not timed).
    read_ga4_window(*ga4_readers, site.events, start - timedelta(hours=2), start, parsed_files=kept)
    times: dict[str, list[float]] = {name: [] for name in SOURCES}
    results = {}
    for _ in range(repeat):
        for name in SOURCES:
            began = time.perf_counter()
            if name == "snowplow":
                objects = partial(snowplow_bucket.window_objects, snowplow_site)
                events = ingest_events(objects, start, end, snowplow_site.events)[1].events
            else:
                parsed_files = kept if name == "ga4-kept" else None
                events = read_ga4_window(
                    *ga4_readers, site.events, start, end, parsed_files=parsed_files
                ).events
            times[name].append(time.perf_counter() - began)
            interactions = sessionize(events, site).interactions
            results[name] = (len(events), len(interactions), float(interactions["engaged_seconds"].sum()))
    shutil.rmtree(kept_dir, ignore_errors=True)
    load = os.getloadavg()
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"window {start:%H:%M}-{end:%H:%M}:")
    for name in SOURCES:
        rows, interactions, seconds = results[name]
        print(
            f"{name:9s} median {medians[name]:6.2f} s of {[round(t, 2) for t in times[name]]}: "
            f"{rows:,} raw events, {interactions:,} interactions, {seconds:,.0f} engaged s"
        )
    print(
        f"ga4 / snowplow: {medians['ga4'] / medians['snowplow']:.2f}x the time; with the day's files' "
        f"parses kept by its earlier windows {medians['ga4-kept'] / medians['snowplow']:.2f}x "
        f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    )


# Snowplow's folders; GA4's export parsed whole; GA4's export with its files' parses kept.
SOURCES = ("snowplow", "ga4", "ga4-kept")


if __name__ == "__main__":
    main()

"""`article-rec-generate`: write a demo clickstream for one or more sites."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from article_rec_assets.settings.sites import PACKAGED_SITES_DIR
from article_rec_demo.generator.clickstream import GROUND_TRUTH_FILE, generate_site
from article_rec_demo.generator.ga4 import generate_ga4_site
from article_rec_demo.generator.noise import DEFAULT_NOISE
from article_rec_demo.sites import load_demo_sites


def parse_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="folder to write into")
    parser.add_argument("--end", type=parse_utc, required=True, help="UTC end, e.g. 2026-03-04T00:00")
    parser.add_argument("--days", type=float, default=3.0, help="days of events before --end")
    parser.add_argument("--sites-dir", type=Path, default=PACKAGED_SITES_DIR)
    parser.add_argument("--site", action="append", help="only these sites (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="override each site's seed")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="human web traffic only: no bots, AMP, TSV, duplicates, late, malformed or truncated data",
    )
    args = parser.parse_args(argv)

    sites = load_demo_sites(args.sites_dir)
    for name in args.site or [n for n, s in sites.items() if s.demo is not None]:
        site, start = sites[name], args.end - timedelta(days=args.days)
        # A site on GA4 (from `events.ga4.since` on) gets that span as a GA4 export.
        ga4 = site.events.ga4
        switch = args.end if ga4 is None else min(max(start, ga4.since or start), args.end)
        if switch < args.end:
            # One world for both spans: the same articles and readers on either side of the switch.
            world = (start, args.end) if switch > start else None
            written = generate_ga4_site(site, args.data_dir, switch, args.end, args.seed, world=world)
            print(
                f"{site.name}: GA4 export from {switch:%Y-%m-%d %H:%M}, {written.page_views} page views, "
                f"{written.records} records, tables {written.tables}"
            )
            if switch == start:
                continue
        summary = generate_site(
            site,
            args.data_dir,
            start,
            switch,
            args.seed,
            noise=None if args.clean else DEFAULT_NOISE,
            world=(start, args.end) if switch < args.end else None,
        )
        print(
            f"{summary.site}: {summary.articles} articles, {summary.sessions} sessions, "
            f"{summary.page_views} page views, {summary.events} events in {summary.files} files"
        )
        truth = summary.ground_truth
        if truth["noise"] is not None:
            print(
                f"  noise: {truth['quarantined']['total']} malformed lines, "
                f"{truth['lines']['lost_to_truncation']} lines lost in {len(truth['truncated_objects'])} "
                f"truncated objects, {truth['duplicates']['extra_copies']} duplicate copies, "
                f"{sum(truth['bots'].values())} bot events, {sum(truth['staging'].values())} staging events, "
                f"{truth['amp']['page_views']} AMP page views, {truth['tsv']['lines']} TSV lines; "
                f"ground truth in {args.data_dir / name / GROUND_TRUTH_FILE}"
            )


if __name__ == "__main__":
    main()

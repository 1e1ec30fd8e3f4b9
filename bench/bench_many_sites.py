"""Many sites at once: one schedule tick over N generated sites on the production instance
(`deploy/dagster.yaml`: PostgreSQL storage, the queued run coordinator with one run per site and
at most 4 runs at once, run monitoring), with the real `dagster-daemon` launching the runs.

    .venv/bin/python -m bench.bench_many_sites                # 20 sites, one of them broken
    .venv/bin/python -m bench.bench_many_sites --sites 8 --hours 4

The tick is the scheduler's own code (`launch_scheduled_runs`) at 22:15 UTC of the day before
today; the daemon's run queue and launcher do the rest, each run in its own process. Prints the
time until every site has published, the runs in flight at once, and what became of each site:
one site's bucket holds only garbage, and its run must fail alone while the others publish.
Needs PostgreSQL on 127.0.0.1:5432 (a database is made and dropped).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import yaml

from bench.daemon import start_daemon, stop_daemon

REPO = Path(__file__).resolve().parents[1]
DSN = os.environ.get("ARTICLE_REC_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres")


def write_sites(sites_dir: Path, count: int) -> list[str]:
    template = yaml.safe_load(
        (REPO / "article_rec_assets" / "settings" / "sites" / "demo-city-paper.yaml").read_text()
    )
    names = []
    for i in range(count):
        name = f"site-{i:02d}"
        raw = yaml.safe_load(yaml.safe_dump(template))
        raw["name"], raw["display_name"] = name, f"Site {i}"
        raw["events"]["bucket"] = f"{name}-events"
        raw["articles"]["catalogue"]["path"] = f"{name}/catalogue.jsonl"
        raw["demo"] = {**raw["demo"], "seed": 100 + i, "sessions_per_day": 3000, "readers": 1500}
        (sites_dir / f"{name}.yaml").write_text(yaml.safe_dump(raw))
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--hours", type=int, default=6, help="hours of history before the tick's window")
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-many-sites-"))
    database = f"bench_sites_{uuid.uuid4().hex[:8]}"
    window = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0) - timedelta(days=1)
    tick = window + timedelta(hours=2, minutes=15)
    sites_dir, data_dir, home = work / "sites", work / "data", work / "home"
    for folder in (sites_dir, data_dir, home):
        folder.mkdir()
    names = write_sites(sites_dir, args.sites)
    env = {
        "ARTICLE_REC_SITES_DIR": str(sites_dir),
        "ARTICLE_REC_DATA_DIR": str(data_dir),
        "ARTICLE_REC_PARTITIONS_START": (window - timedelta(days=2)).strftime("%Y-%m-%d-00:00"),
        "SERVING_DATABASE_URL": f"postgresql://root@127.0.0.1:5432/{database}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USERNAME": "root",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": database,
        "OPENBLAS_NUM_THREADS": "1",
    }
    os.environ.update(env)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')

    # Imported only now: the definitions read the environment when they load.
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.test_utils import freeze_time
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
    from article_rec_assets.partitions import SITES
    from article_rec_assets.publishing.api import current_model
    from article_rec_assets.publishing.schema import connect
    from article_rec_demo.generator.clickstream import generate_site

    daemon = None
    try:
        started = time.perf_counter()
        for name in names:
            generate_site(
                SITES[name], data_dir, window - timedelta(hours=args.hours), window + timedelta(hours=2)
            )
        broken = names[len(names) // 2]
        for hour in (window, window + timedelta(hours=1)):
            for path in (site_bucket_dir(data_dir, SITES[broken]) / hour_folder(hour)).glob("*"):
                path.write_bytes(b"\x00garbage, not events\n" * 5000)  # an upstream writer gone wrong
        print(
            f"{len(names)} sites generated in {time.perf_counter() - started:.0f} s ({args.hours} h of "
            f"history + the window {window:%Y-%m-%d %H:%M}); broken bucket: {broken}; "
            f"load average {os.getloadavg()[0]:.2f}"
        )

        instance = DagsterInstance.get()
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")])
        ) as workspace:
            location = workspace.create_request_context().get_code_location("article_rec_assets")
            repository = next(iter(location.get_repositories().values()))
            with freeze_time(tick - timedelta(minutes=5)):
                instance.start_schedule(repository.get_schedule("every_two_hours"))
            submitted = time.perf_counter()
            with freeze_time(tick + timedelta(seconds=30)):
                list(
                    launch_scheduled_runs(
                        workspace,
                        logging.getLogger("bench"),
                        tick + timedelta(seconds=30),
                        iteration_times={},
                    )
                )
            # Only this tick: the daemon's own scheduler, on the wall clock, would add the ticks since.
            schedule = repository.get_schedule("every_two_hours")
            instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
            daemon = start_daemon(work, work / "daemon.log")
        requested = instance.get_runs(RunsFilter(tags={"dagster/schedule_name": "every_two_hours"}))
        print(f"tick {tick:%H:%M}: {len(requested)} runs queued in {time.perf_counter() - submitted:.1f} s")

        in_flight, busy = 0, {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
        waiting = {DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, *busy}
        while time.perf_counter() - submitted < args.timeout:
            runs = instance.get_runs(RunsFilter(tags={"dagster/schedule_name": "every_two_hours"}))
            in_flight = max(in_flight, sum(r.status in busy for r in runs))
            if runs and not any(r.status in waiting for r in runs):
                break
            time.sleep(0.5)
        total = time.perf_counter() - submitted
        records = instance.get_run_records(RunsFilter(tags={"dagster/schedule_name": "every_two_hours"}))
        durations = sorted(r.end_time - r.start_time for r in records if r.start_time and r.end_time)
        by_status: dict[str, list[str]] = {}
        for record in records:
            by_status.setdefault(record.dagster_run.status.value, []).append(
                record.dagster_run.tags["dagster/partition/site"]
            )
        engine = connect(env["SERVING_DATABASE_URL"])
        published = [n for n in names if current_model(engine, n) is not None]
        engine.dispose()
        print(
            f"every run done {total:.0f} s after the tick; at most {in_flight} runs in flight at once "
            f"(max_concurrent_runs 4, one per site)"
        )
        if durations:
            print(
                f"run wall time: median {durations[len(durations) // 2]:.0f} s, min {durations[0]:.0f} s, "
                f"max {durations[-1]:.0f} s; load average {os.getloadavg()[0]:.2f}"
            )
        windows = sorted({r.dagster_run.tags.get("dagster/partition/window", "?") for r in records})
        print(f"windows asked for: {windows}")
        for record in sorted(records, key=lambda r: r.dagster_run.tags.get("dagster/partition", "")):
            run = record.dagster_run
            if run.status != DagsterRunStatus.SUCCESS:
                failures = [
                    e.dagster_event.step_key + ": " + (e.message or "")[:160].replace("\n", " ")
                    for e in instance.all_logs(run.run_id)
                    if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"
                ]
                print(f"  {run.status.value} {run.tags.get('dagster/partition')}: {failures[:1]}")
        for status, sites in sorted(by_status.items()):
            print(
                f"  {status}: {len(sites)} ({', '.join(sorted(sites)) if len(sites) < 5 else 'the others'})"
            )
        print(
            f"published: {len(published)} of {len(names)} sites; the broken one ({broken}) "
            f"{'did not publish' if broken not in published else 'PUBLISHED (wrong)'}"
        )
    finally:
        if daemon is not None:
            stop_daemon(daemon)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Onboarding a site: its history backfilled through Dagster, as an operator does it from the UI.

    .venv/bin/python -m bench.bench_onboarding                   # the large 1x site, 28 days
    .venv/bin/python -m bench.bench_onboarding --days 2          # the same site, 2 days
    .venv/bin/python -m bench.bench_onboarding --demo            # the demo's own history ingestion
    .venv/bin/python -m bench.bench_onboarding --days 28 --scale 0.02   # run counts, small windows
    .venv/bin/python -m bench.bench_onboarding --days 1 --code . --code ../old-checkout  # versions

The large site is `bench_large_site`'s 1x site (~95,000 sessions a day, ~300,000 events in a
two-hour window). Its `--days` of raw Snowplow events are generated into a local bucket (one call
per window), then, on the embedded default instance (the repository's dagster.yaml: SQLite, the
queued run coordinator, one run per site) with the real `dagster-daemon` running:

1. the backfill of the site's window assets over every window is launched as the UI launches it
   (the GraphQL mutation `launchPartitionBackfill`), and the daemon runs it to the end;
2. from the instance: the windows, the runs, the wall time (launch -> the last run's end), the
   step work (the steps' own start-to-end times, summed over every run), Dagster's share of the
   wall time (1 - work / wall), and the peak RSS of any process under the daemon (run workers,
   code server), sampled every 0.1 s.

`--code` runs the same with the package of another checkout (its asset keys and partition keys are
read from its own `partitions` module: site x window, or per site), so that versions are compared
on the same data in the same run. `--demo` measures the demo's history ingestion (two sites, 35
windows each, in this process as `make demo` runs it): each site's wall time against its steps'.
Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINDOW_HOURS = 2


def generate(work: Path, days: float, end: datetime, scale: float) -> tuple[Path, Path, datetime]:
    """The large site's file (`scale` times its events) and `days` of its raw events before `end`:
    (sites dir, data dir, start)."""
    import yaml

    from bench.bench_large_site import SITE, TRAINING_DAYS, site_yaml

    sites_dir, data_dir = work / "sites", work / "data"
    sites_dir.mkdir(parents=True, exist_ok=True)
    start = end - timedelta(hours=WINDOW_HOURS * round(days * 24 / WINDOW_HOURS))
    raw = site_yaml(scale, 1)
    raw["demo"]["backlist_days"] = max(TRAINING_DAYS, days) + 2
    (sites_dir / f"{SITE}.yaml").write_text(yaml.safe_dump(raw))
    marker = data_dir / f".generated-{start:%Y%m%d%H}-{end:%Y%m%d%H}-{scale:g}"
    if marker.exists():
        return sites_dir, data_dir, start
    from article_rec_assets.settings.sites import load_site
    from article_rec_demo.generator.clickstream import generate_site

    site = load_site(sites_dir / f"{SITE}.yaml")
    started = time.perf_counter()
    events, window = 0, start
    while window < end:
        summary = generate_site(
            site, data_dir, window, window + timedelta(hours=WINDOW_HOURS), world=(start, end)
        )
        events += summary.events
        window += timedelta(hours=WINDOW_HOURS)
    marker.write_text(f"{events}\n")
    print(f"generated {events:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    return sites_dir, data_dir, start


def backfill(code: Path, work: Path, sites_dir: Path, data_dir: Path, start: datetime, end: datetime) -> dict:
    """The whole backfill in a process of its own (its environment picks the code and instance)."""
    home = work / f"home-{time.monotonic_ns()}"
    home.mkdir(parents=True)
    shutil.copy(code / "dagster.yaml", home / "dagster.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARTICLE_REC_", "DAGSTER_", "SERVING_"))},
        "PYTHONPATH": f"{code}{os.pathsep}{REPO}",
        "DAGSTER_HOME": str(home),
        "ARTICLE_REC_SITES_DIR": str(sites_dir),
        "ARTICLE_REC_DATA_DIR": str(data_dir),
        "ARTICLE_REC_PARTITIONS_START": f"{start:%Y-%m-%d-%H:%M}",
        "SERVING_DATABASE_URL": f"sqlite:///{home / 'serving.db'}",
        "OPENBLAS_NUM_THREADS": "1",
    }
    done = subprocess.run(
        # As a script: the `bench` package then comes from PYTHONPATH, the checkout's own.
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--run-backfill",
            str(code),
            str(home),
            end.isoformat(),
        ],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_backfill(code: Path, home: Path, end: datetime) -> dict:
    """In the backfill's process: launch it as the UI does, with the daemon, and describe it."""
    import logging

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
    from dagster_graphql.test.utils import execute_dagster_graphql

    from article_rec_assets import partitions
    from bench.bench_large_site import SITE, TreeSampler
    from bench.daemon import start_daemon, stop_daemon

    logging.disable(logging.WARNING)
    ingestion = ["delivered_events", "reading_state", "raw_events", "quarantined_event_lines"]
    window_assets = [*ingestion, "sessionized_interactions", "article_catalogue"]
    if hasattr(partitions, "site_window_key"):  # site x window (before the per-site assets)
        keys = partitions.site_window_partitions.get_partition_keys(current_time=end)
        names = [str(k) for k in keys if str(k).startswith(f"{SITE}|")]
        paths = [[asset] for asset in window_assets]
    else:
        names = partitions.window_partitions(SITE).get_partition_keys(current_time=end)
        paths = [partitions.site_key(SITE, asset).path for asset in window_assets]
    instance = DagsterInstance.get()
    daemon = start_daemon(home, home / "daemon.log")
    sampler = TreeSampler()
    sampler.root = daemon.pid
    sampler.start()
    try:
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget([str(code / "workspace.yaml")])
        ) as workspace:
            launched_at = time.time()
            result = execute_dagster_graphql(
                workspace.create_request_context(),
                LAUNCH_PARTITION_BACKFILL_MUTATION,
                {"backfillParams": {"partitionNames": names, "assetSelection": [{"path": p} for p in paths]}},
            )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        while True:
            backfill = instance.get_backfill(backfill_id)
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            if backfill.status.value != "REQUESTED" and all(r.is_finished for r in runs):
                break
            time.sleep(0.5)
    finally:
        sampler.stop.set()
        stop_daemon(daemon)
    records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    step_work, run_overhead, last_end = 0.0, 0.0, launched_at
    statuses: dict[str, int] = {}
    for record in records:
        run = record.dagster_run
        statuses[run.status.value] = statuses.get(run.status.value, 0) + 1
        run_work = step_seconds(instance, run.run_id)
        step_work += run_work
        if record.end_time and record.create_timestamp:
            run_overhead += (record.end_time - record.create_timestamp.timestamp()) - run_work
        last_end = max(last_end, record.end_time or 0)
    wall = last_end - launched_at
    return {
        "windows": len(names),
        "runs": len(records),
        "run_statuses": statuses,
        "wall_seconds": round(wall, 1),
        "step_work_seconds": round(step_work, 1),
        "wall_over_work": round(wall / step_work, 3) if step_work else None,
        "dagster_share": round(1 - step_work / wall, 3) if wall else None,
        "peak_rss_mb": round(max(sampler.hwm_kb.values(), default=0) / 1024),
        "succeeded": statuses.get(DagsterRunStatus.SUCCESS.value, 0) == len(records),
        "load_average": round(os.getloadavg()[0], 2),
    }


def step_seconds(instance, run_id: str) -> float:
    """The run's steps' own start-to-end times, summed (its work, without Dagster's share)."""
    from dagster._core.events import DagsterEventType

    starts: dict[str, float] = {}
    work = 0.0
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            work += entry.timestamp - starts.pop(entry.step_key, entry.timestamp)
    return work


def demo(work: Path) -> dict:
    """The demo's history ingestion as `make demo` runs it: per site, one run over 35 windows."""
    home = work / "demo"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARTICLE_REC_", "DAGSTER_", "SERVING_"))},
        "OPENBLAS_NUM_THREADS": "1",
    }
    code = (
        "import json, time, sys\n"
        "from bench.bench_onboarding import demo_in_process\n"
        f"print(json.dumps(demo_in_process({str(home)!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def demo_in_process(home: str) -> dict:
    from article_rec_demo import demo as demo_module

    home_path = Path(home)
    os.environ["DAGSTER_HOME"] = str(home_path / "dagster_home")
    os.environ["ARTICLE_REC_DATA_DIR"] = str(home_path / "data")
    os.environ["SERVING_DATABASE_URL"] = f"sqlite:///{home_path / 'serving.db'}"
    end = datetime(2026, 3, 4, tzinfo=UTC)
    start = end - timedelta(days=3)
    os.environ["ARTICLE_REC_PARTITIONS_START"] = f"{start:%Y-%m-%d-%H:%M}"
    (home_path / "dagster_home").mkdir(parents=True, exist_ok=True)
    demo_module.install_instance_file(home_path / "dagster_home")

    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from article_rec_assets.definitions import defs
    from article_rec_assets.partitions import SITES, window_key
    from article_rec_assets.schedules import INGEST_WINDOW_JOB, site_name
    from article_rec_demo.demo_run import QUIET
    from article_rec_demo.generator.clickstream import generate_site

    windows = [start + timedelta(hours=WINDOW_HOURS * i) for i in range(36)]
    out = {}
    instance = DagsterInstance.get()
    for name, site in SITES.items():
        if site.demo is None:
            continue
        generate_site(site, home_path / "data", start, end)
        started = time.perf_counter()
        result = defs.resolve_job_def(site_name(name, INGEST_WINDOW_JOB)).execute_in_process(
            instance=instance,
            run_config=QUIET,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: window_key(windows[0]),
                ASSET_PARTITION_RANGE_END_TAG: window_key(windows[-2]),
            },
        )
        wall = time.perf_counter() - started
        work = step_seconds(instance, result.run_id)
        out[name] = {
            "windows": len(windows) - 1,
            "runs": 1,
            "wall_seconds": round(wall, 2),
            "step_work_seconds": round(work, 2),
            "wall_over_work": round(wall / work, 3),
            "success": result.success,
        }
    out["load_average"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=28)
    parser.add_argument("--scale", type=float, default=1.0, help="the large site's events, times 1x")
    parser.add_argument("--end", default="2026-03-28T12:00:00+00:00", help="UTC end of the history")
    parser.add_argument("--code", type=Path, action="append", help="checkouts to run (default: this one)")
    parser.add_argument("--workdir", type=Path, help="keeps the generated data between runs")
    parser.add_argument("--demo", action="store_true", help="the demo's history ingestion instead")
    parser.add_argument("--run-backfill", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_backfill:
        code, home, end = args.run_backfill
        print(json.dumps(run_backfill(Path(code), Path(home), datetime.fromisoformat(end))))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-onboarding-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.demo:
        result = demo(work)
        for name, figures in result.items():
            print(f"{name}: {figures}")
        print(json.dumps(result))
        return
    end = datetime.fromisoformat(args.end)
    sites_dir, data_dir, start = generate(work, args.days, end, args.scale)
    results = {}
    for code in args.code or [REPO]:
        code = code.resolve()
        results[str(code)] = backfill(code, work, sites_dir, data_dir, start, end)
        print(f"{code}: {results[str(code)]}", flush=True)
    columns = ["windows", "runs", "wall_seconds", "step_work_seconds", "wall_over_work", "dagster_share"]
    print("| code | " + " | ".join(columns) + " | peak MB | load |")
    print("|" + " --- |" * (len(columns) + 3))
    for code, figures in results.items():
        cells = " | ".join(str(figures[c]) for c in columns)
        print(f"| {Path(code).name} | {cells} | {figures['peak_rss_mb']:,} | {figures['load_average']} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

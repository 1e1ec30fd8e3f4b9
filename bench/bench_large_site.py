"""One large site's full scheduled tick through Dagster, at several scales.

    .venv/bin/python -m bench.bench_large_site                       # 1x: ~300k events a window
    .venv/bin/python -m bench.bench_large_site --scales 1x1 4x1 1x2 1x4
    .venv/bin/python -m bench.bench_large_site --scales 16x1 --raw-windows 2

A scale `ExA` is E times the events (sessions and readers) and A times the articles of the 1x
site: ~95,000 sessions a day (~300,000 events in a two-hour window, more at the peaks), 300,000
readers, 700 articles a day (~20,000 in the 28-day training window). Each scale runs in its own
process, on its own production instance (`deploy/dagster.yaml`: PostgreSQL run and event
storage, the queued run coordinator) and serving database, then they are printed side by side:

1. Data. The newest `--raw-windows` windows (default 12: the newest day) as real Snowplow events
   (`generate_site`, default noise, one window per call over one site); the 28 days before them
   as per-window sessionized interactions written straight to the asset storage by
   `generate_history` (rendering and parsing ~100M events would take hours), each reported to the
   instance as a materialization.
2. History as a backfill leaves it: the raw windows before the tick's are ingested and their
   catalogue refreshed in one run over the range, oldest first (the reading state carries).
3. The tick: the site's `every_two_hours` schedule evaluated at 12:15 UTC (the scheduler's own code);
   the `dagster-daemon` launches the run in its own process, as in production.
4. From the run's event log: per step, the wall time split into inputs loaded (the IO manager's
   reports of each load), compute, and outputs stored + checks; from /proc, sampled every 0.1 s,
   the run process's RSS during each step and its peak (VmHWM). Dagster's overhead: queue ->
   run start, run start -> first step (the worker process starting and loading the definitions),
   between steps, last step -> run end. Storage: the bytes on disk of the site's per-window
   tables and of one window's pickled values.

Needs PostgreSQL on 127.0.0.1:5432 (databases are made and dropped). Prints JSON per scale too.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.daemon import start_daemon, stop_daemon

REPO = Path(__file__).resolve().parents[1]
DSN = os.environ.get("ARTICLE_REC_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres")
SITE = "metro-daily"
# The tick's window: a mid-morning window, about the day's average traffic (8.9 % of it).
WINDOW = datetime(2026, 3, 28, 10, tzinfo=UTC)
TICK = WINDOW + timedelta(hours=2, minutes=15)
TRAINING_DAYS = 28
BASE = {"sessions_per_day": 95_000, "readers": 300_000, "articles_per_day": 700}
LOADED = re.compile(r"^loaded (\S+): (\d+) partitions, ([\d,]+) rows in ([\d.]+) s")


def _rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB; (0, 0) once it is gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (FileNotFoundError, ProcessLookupError, KeyError, ValueError):
        return 0, 0


class TreeSampler(threading.Thread):
    """Samples the RSS of every process under the daemon (code server, run workers), per pid."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.root: int | None = None
        self.samples: dict[int, list[tuple[float, int]]] = {}  # pid -> (epoch seconds, RSS kB)
        self.hwm_kb: dict[int, int] = {}
        self.stop = threading.Event()

    def tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    # The field after the parenthesized command name is the state, then the ppid.
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        found, frontier = [], [self.root]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            frontier.extend(child for child, parent in parents.items() if parent == pid)
        return found

    def run(self) -> None:
        while not self.stop.is_set():
            if self.root is not None:
                now = time.time()
                for pid in self.tree():
                    rss, hwm = _rss_kb(pid)
                    if rss:
                        self.samples.setdefault(pid, []).append((now, rss))
                        self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
            time.sleep(0.1)

    def peak_between(self, pid: int, start: float, end: float) -> float:
        values = [rss for t, rss in self.samples.get(pid, []) if start <= t <= end]
        return max(values) / 1024 if values else 0.0


def site_yaml(events: float, articles: float) -> dict:
    import yaml

    raw = yaml.safe_load(
        (REPO / "article_rec_assets" / "settings" / "sites" / "demo-city-paper.yaml").read_text()
    )
    raw["name"], raw["display_name"] = SITE, "Metro Daily"
    raw["events"]["bucket"] = f"{SITE}-events"
    raw["articles"]["catalogue"]["path"] = f"{SITE}/catalogue.jsonl"
    raw["demo"] = {
        **raw["demo"],
        "seed": 2026,
        "sessions_per_day": int(BASE["sessions_per_day"] * events),
        "readers": int(BASE["readers"] * events),
        "articles_per_day": int(BASE["articles_per_day"] * articles),
        # The catalogue's articles cover the history (generate_site's backlist).
        "backlist_days": TRAINING_DAYS + 2,
    }
    return raw


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def one_scale(events: float, articles: float, raw_windows: int, work: Path, timeout: int) -> dict:
    """Everything for one scale, in this process (the parent starts one process per scale)."""
    import psycopg
    import yaml

    database = f"bench_large_{uuid.uuid4().hex[:8]}"
    sites_dir, data_dir, home = work / "sites", work / "data", work / "home"
    for folder in (sites_dir, data_dir, home):
        folder.mkdir(parents=True, exist_ok=True)
    (sites_dir / f"{SITE}.yaml").write_text(yaml.safe_dump(site_yaml(events, articles)))
    history_start = WINDOW + timedelta(hours=2) - timedelta(days=TRAINING_DAYS)
    env = {
        "ARTICLE_REC_SITES_DIR": str(sites_dir),
        "ARTICLE_REC_DATA_DIR": str(data_dir),
        "ARTICLE_REC_PARTITIONS_START": history_start.strftime("%Y-%m-%d-%H:00"),
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
    import pandas as pd
    from dagster import AssetMaterialization, DagsterInstance, RunsFilter, materialize
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from dagster._core.test_utils import freeze_time
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from article_rec_assets.assets import WINDOW_TAG
    from article_rec_assets.definitions import all_assets, defs
    from article_rec_assets.partitions import SITES, site_key, site_prefix, window_key
    from article_rec_assets.schedules import LABEL_ASSETS, SCHEDULE, WINDOW_ASSETS, site_name, site_selection
    from article_rec_demo.generator.clickstream import generate_site
    from bench.history import generate_history

    site = SITES[SITE]
    result: dict = {"scale": f"{events:g}x{articles:g}", "events_scale": events, "articles_scale": articles}
    daemon = None
    sampler = TreeSampler()
    try:
        raw_start = WINDOW + timedelta(hours=2) - timedelta(hours=2 * raw_windows)
        started = time.perf_counter()
        world = (raw_start, WINDOW + timedelta(hours=2))
        events_written = articles_in_catalogue = newest_window_events = 0
        # Piece by piece: a call holds its events in memory (~3.4 GB for a 1x window), so above
        # 1x an hour at a time, and above 4x each hour in parts of at most a 4x hour (~7 GB).
        piece_hours = 2 if events <= 1 else 1
        parts = max(1, math.ceil(events / 4))
        for i in range(raw_windows * 2 // piece_hours):
            piece = raw_start + timedelta(hours=piece_hours * i)
            for p in range(parts):
                summary = generate_site(
                    site,
                    data_dir,
                    piece,
                    piece + timedelta(hours=piece_hours),
                    world=world,
                    part=(p, parts) if parts > 1 else None,
                )
                events_written, articles_in_catalogue = events_written + summary.events, summary.articles
                if piece >= WINDOW:
                    newest_window_events += summary.events
        result["raw"] = {
            "windows": raw_windows,
            "events": events_written,
            "newest_window_events": newest_window_events,
            "articles_in_catalogue": articles_in_catalogue,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"[{result['scale']}] raw events: {result['raw']}", flush=True)

        instance = DagsterInstance.get()
        storage = Path(instance.storage_directory())
        site_storage = storage / site_prefix(SITE)
        started = time.perf_counter()
        rows = windows = 0
        for start, frame in generate_history(
            site, raw_start, WINDOW + timedelta(hours=2), history_start, raw_start
        ):
            key = window_key(start)
            path = site_storage / "sessionized_interactions" / f"{key}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
            instance.report_runless_asset_event(
                AssetMaterialization(
                    site_key(SITE, "sessionized_interactions"),
                    partition=key,
                    metadata={"dagster/row_count": len(frame), "generated": "bench.bench_large_site"},
                )
            )
            rows, windows = rows + len(frame), windows + 1
        result["history"] = {
            "windows": windows,
            "interactions": rows,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"[{result['scale']}] history: {result['history']}", flush=True)

        started = time.perf_counter()
        backfilled = raw_windows - 1
        if backfilled:
            first, last = raw_start, raw_start + timedelta(hours=2 * (backfilled - 1))
            outcome = materialize(
                all_assets,
                selection=site_selection(SITE, WINDOW_ASSETS),
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: window_key(first),
                    ASSET_PARTITION_RANGE_END_TAG: window_key(last),
                },
                instance=instance,
                resources=defs.resources,
            )
            assert outcome.success
        result["backfill"] = {"windows": backfilled, "seconds": round(time.perf_counter() - started, 1)}
        print(f"[{result['scale']}] backfill of the raw windows: {result['backfill']}", flush=True)

        # The ticks of the day before, as the schedule leaves them: each window's ranker examples
        # and the model of the window before the tick's (which its backtest evaluates). Generated
        # windows have no catalogue of their own: they take the first ingested window's (articles
        # published later are never candidates, as of any earlier window).
        started = time.perf_counter()
        previous = [WINDOW - timedelta(hours=2 * i) for i in range(11, 0, -1)]
        ingested = site_storage / "article_catalogue" / f"{window_key(raw_start)}.parquet"
        for start in previous:
            table = site_storage / "article_catalogue" / f"{window_key(start)}.parquet"
            if not table.exists():
                shutil.copy(ingested, table)
        outcome = materialize(
            all_assets,
            selection=site_selection(SITE, LABEL_ASSETS),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: window_key(previous[0]),
                ASSET_PARTITION_RANGE_END_TAG: window_key(previous[-1]),
            },
            instance=instance,
            resources=defs.resources,
        )
        assert outcome.success
        examples_seconds = time.perf_counter() - started
        outcome = materialize(
            all_assets,
            selection=site_selection(SITE, ("trained_model",)),
            tags={WINDOW_TAG: window_key(previous[-1])},
            instance=instance,
            resources=defs.resources,
        )
        assert outcome.success
        result["day_before"] = {
            "ranker_examples_windows": len(previous),
            "ranker_examples_seconds": round(examples_seconds, 1),
            "trained_model_seconds": round(time.perf_counter() - started - examples_seconds, 1),
        }
        print(f"[{result['scale']}] the day before the tick: {result['day_before']}", flush=True)

        sampler.start()
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")])
        ) as workspace:
            location = workspace.create_request_context().get_code_location("article_rec_assets")
            repository = next(iter(location.get_repositories().values()))
            schedule = repository.get_schedule(site_name(SITE, SCHEDULE))
            with freeze_time(TICK - timedelta(minutes=5)):
                instance.start_schedule(schedule)
            evaluated = time.perf_counter()
            with freeze_time(TICK + timedelta(seconds=30)):
                list(
                    launch_scheduled_runs(
                        workspace,
                        logging.getLogger("bench"),
                        TICK + timedelta(seconds=30),
                        iteration_times={},
                    )
                )
            schedule_seconds = time.perf_counter() - evaluated
            instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
        queued = time.time()
        daemon = start_daemon(work, work / "daemon.log")
        sampler.root = daemon.pid
        run_filter = RunsFilter(tags={"dagster/schedule_name": site_name(SITE, SCHEDULE)})
        while time.time() - queued < timeout:
            records = instance.get_run_records(run_filter)
            if records and all(r.dagster_run.is_finished for r in records):
                break
            time.sleep(0.5)
        sampler.stop.set()
        records = instance.get_run_records(run_filter)
        if len(records) != 1:
            raise RuntimeError(f"expected one run of the tick, found {len(records)}")
        record = records[0]
        run = record.dagster_run
        result["run"] = {"status": run.status.value, "partition": run.tags.get("dagster/partition")}
        result.update(describe_run(instance, run.run_id, queued, sampler, DagsterEventType))
        result["dagster_overhead"]["schedule_evaluation"] = round(schedule_seconds, 2)
        result["storage"] = {
            "sessionized_interactions_mb": round(
                du_bytes(site_storage / "sessionized_interactions") / 1e6, 1
            ),
            "all_tables_and_values_mb": round(du_bytes(storage) / 1e6, 1),
            # A window asset's value of the tick's window; a model asset's one value.
            "per_window_mb": {
                path.name.split(".")[0]: round(
                    (
                        sum(p.stat().st_size for p in path.glob(f"{WINDOW:%Y-%m-%d-%H:%M}*"))
                        if path.is_dir()
                        else path.stat().st_size
                    )
                    / 1e6,
                    2,
                )
                for path in sorted(site_storage.iterdir())
            },
        }
        result["load_average"] = round(os.getloadavg()[0], 2)
        if run.status.value != "SUCCESS":
            failures = [
                (e.dagster_event.step_key, (e.message or "")[:300])
                for e in instance.all_logs(run.run_id)
                if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"
            ]
            result["failures"] = failures
        del pd
        return result
    finally:
        sampler.stop.set()
        if daemon is not None:
            stop_daemon(daemon)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def describe_run(instance, run_id: str, daemon_started: float, sampler: TreeSampler, event_type) -> dict:
    """Per-step times and memory, and Dagster's own overhead, from the run's event log."""
    logs = instance.all_logs(run_id)
    steps: dict[str, dict] = {}
    materialized: dict[str, dict] = {}
    run_start = run_end = run_starting = worker = None
    for entry in logs:
        event = entry.dagster_event
        step = entry.step_key
        if event is not None and event.event_type == event_type.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            numbers = {
                k: v.value
                for k, v in materialization.metadata.items()
                if isinstance(getattr(v, "value", None), int | float)
            }
            materialized[materialization.asset_key.to_user_string()] = numbers
        if event is None:
            match = LOADED.match(entry.user_message or "")
            if match and step:
                loads = steps.setdefault(step, {}).setdefault("loads", [])
                loads.append(
                    {
                        "asset": match.group(1),
                        "partitions": int(match.group(2)),
                        "rows": int(match.group(3).replace(",", "")),
                        "seconds": float(match.group(4)),
                    }
                )
            continue
        kind = event.event_type
        pid = re.search(r"pid: (\d+)", entry.user_message or "") if kind == event_type.ENGINE_EVENT else None
        if pid and worker is None:
            worker = int(pid.group(1))
        if kind == event_type.RUN_STARTING:
            run_starting = entry.timestamp
        elif kind == event_type.RUN_START:
            run_start = entry.timestamp
        elif kind in (event_type.RUN_SUCCESS, event_type.RUN_FAILURE):
            run_end = entry.timestamp
        if step is None:
            continue
        info = steps.setdefault(step, {})
        if kind == event_type.STEP_START:
            info["start"] = entry.timestamp
        elif kind == event_type.STEP_INPUT:
            info["inputs_done"] = entry.timestamp
        elif kind == event_type.STEP_OUTPUT:
            info.setdefault("first_output", entry.timestamp)
        elif kind in (event_type.STEP_SUCCESS, event_type.STEP_FAILURE):
            info["end"] = entry.timestamp
    table = []
    for name, info in sorted(steps.items(), key=lambda item: item[1].get("start", 0)):
        if "start" not in info or "end" not in info:
            continue
        inputs_done = info.get("inputs_done", info["start"])
        first_output = info.get("first_output", info["end"])
        table.append(
            {
                "step": name,
                "wall": round(info["end"] - info["start"], 2),
                "inputs": round(inputs_done - info["start"], 2),
                "io_loads": round(sum(load["seconds"] for load in info.get("loads", [])), 2),
                "compute": round(first_output - inputs_done, 2),
                "outputs_and_checks": round(info["end"] - first_output, 2),
                "peak_rss_mb": round(sampler.peak_between(worker, info["start"], info["end"]), 0)
                if worker
                else None,
                "loads": info.get("loads", []),
            }
        )
    starts = [s["start"] for s in steps.values() if "start" in s]
    ends = [s["end"] for s in steps.values() if "end" in s]
    step_wall = sum(row["wall"] for row in table)
    overhead = {
        # The daemon starting, loading the code location and dequeuing (a production daemon is up).
        "daemon_start_to_launch": round(run_starting - daemon_started, 2) if run_starting else None,
        # The run worker process starting and loading the definitions.
        "launch_to_run_start": round(run_start - run_starting, 2) if run_start and run_starting else None,
        "run_start_to_first_step": round(min(starts) - run_start, 2) if starts and run_start else None,
        "between_steps": round((max(ends) - min(starts)) - step_wall, 2) if starts else None,
        "last_step_to_run_end": round(run_end - max(ends), 2) if ends and run_end else None,
    }
    return {
        "steps": table,
        # From the launch (the daemon dequeuing the run) to the run's end.
        "tick_seconds": round(run_end - run_starting, 1) if run_end and run_starting else None,
        "run_seconds": round((run_end or 0) - (run_start or 0), 1),
        "dagster_overhead": overhead,
        "io_load_seconds": round(sum(row["io_loads"] for row in table), 2),
        "worker_pid": worker,
        "peak_rss_mb": round(sampler.hwm_kb.get(worker, 0) / 1024, 0) if worker else None,
        "code_server_peak_rss_mb": round(
            max((kb for pid, kb in sampler.hwm_kb.items() if pid not in (worker, sampler.root)), default=0)
            / 1024
        ),
        "materialized": materialized,
    }


def print_table(results: list[dict]) -> None:
    base = results[0]
    print()
    for res in results:
        print(
            f"== scale {res['scale']} (events x{res['events_scale']:g}, "
            f"articles x{res['articles_scale']:g}): "
            f"run {res.get('run', {}).get('status')}, tick {res.get('tick_seconds')} s, "
            f"peak RSS {res.get('peak_rss_mb')} MB, load average {res.get('load_average')}"
        )
        print(f"   raw {res['raw']}; history {res['history']}; backfill {res['backfill']}")
        print(f"   the day before the tick: {res.get('day_before')}")
        print(
            f"   {'step':<40} {'wall s':>8} {'inputs':>7} {'io':>7} {'compute':>8} "
            f"{'out+chk':>8} {'RSS MB':>7}"
        )
        for row in res.get("steps", []):
            print(
                f"   {row['step']:<40} {row['wall']:>8.2f} {row['inputs']:>7.2f} {row['io_loads']:>7.2f} "
                f"{row['compute']:>8.2f} {row['outputs_and_checks']:>8.2f} {row['peak_rss_mb'] or 0:>7.0f}"
            )
        print(f"   Dagster overhead: {res.get('dagster_overhead')}; IO loads {res.get('io_load_seconds')} s")
        print(f"   storage: {res.get('storage')}")
    if len(results) > 1 and all("tick_seconds" in r for r in results):
        print("\nratios to the first scale of this run (time / memory):")
        for res in results:
            print(
                f"   {res['scale']:>6}: tick {res['tick_seconds'] / base['tick_seconds']:.2f}x, "
                f"peak RSS {res['peak_rss_mb'] / base['peak_rss_mb']:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", nargs="+", default=["1x1"], help="EVENTSxARTICLES, e.g. 1x1 4x1 1x2")
    parser.add_argument(
        "--raw-windows",
        type=int,
        default=12,
        help="newest windows as real events (at least 2: the windows before the tick's take the "
        "first one's catalogue)",
    )
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--workdir", type=Path, default=None, help="kept after the run when given")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", nargs=2, type=float, help=argparse.SUPPRESS)  # a child: one scale
    args = parser.parse_args()
    if args.raw_windows < 2:
        parser.error("--raw-windows must be at least 2")

    if args.one:
        result = one_scale(args.one[0], args.one[1], args.raw_windows, args.workdir, args.timeout)
        print("RESULT " + json.dumps(result), flush=True)
        return

    results = []
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    for scale in args.scales:
        events, articles = (float(x) for x in scale.split("x"))
        work = Path(tempfile.mkdtemp(prefix=f"bench-large-{scale}-", dir=args.workdir))
        print(f"scale {scale}: work dir {work}; load average {os.getloadavg()[0]:.2f}", flush=True)
        command = [
            *(sys.executable, "-m", "bench.bench_large_site", "--one", str(events), str(articles)),
            *("--raw-windows", str(args.raw_windows), "--timeout", str(args.timeout), "--workdir", str(work)),
        ]
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in child.stdout:  # the child's progress as it goes; its result as the last line
            if line.startswith("RESULT "):
                lines.append(line)
            elif "dagster.code_server" not in line and " - dagster - " not in line:
                print("   " + line.rstrip(), flush=True)
        if child.wait() or not lines:
            print(f"scale {scale}: FAILED (exit {child.returncode})")
            continue
        results.append(json.loads(lines[-1][len("RESULT ") :]))
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if results:
        print_table(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

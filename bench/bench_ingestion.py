"""Ingestion benchmark: the project's reader against the previous job's, pyarrow's, DuckDB's and inflating
alone (the ceiling), on >= 1M events.

Run on demand (pytest never collects it):

    .venv/bin/python -m bench.bench_ingestion [--events N] [--workdir DIR] [--keep] [--repeat R]

1. Generates the events with the project's generator (a demo site, scaled up) in the bucket layout.
2. Times the readers over the same objects, each run in a fresh subprocess (peak RSS per run):
   a. the project's path: EventBucket.window_objects -> parse_objects -> clean_window -> sessionize;
   b. the previous job's way: gzip, json.loads per line, a dict of fields per event, pd.DataFrame;
   c. pyarrow.json.read_json per object with the project's JSON_SCHEMA;
   d. DuckDB read_json with the project's fields, 1 and 2 threads (the near-limit parse reference),
      zlib-ng inflating to RAM then DuckDB (the fastest parse found), and DuckDB parsing line by
      line (one row and one verdict per line, as the project needs);
   e. inflate only, zlib and zlib-ng, on both cores (the ceiling).
3. Prints a table and the goals (project >= 0.7 of zlib-ng+duckdb-2's events/s, the day in 2-hour
   windows >= 0.5 of it) with PASS/FAIL.
4. Measures the peak RSS of the project's path on one 2-hour window of ~300,000 events (<= 600 MB),
   and the ingest_window step of a 10,000-event window through Dagster (<= 0.15 s).

`--profile` instead profiles the project's path on that window with cProfile. See bench/results/ingestion.md.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import inspect
import io
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST_VERSION = 2
SITE_NAME = "demo-city-paper"
FULL_START = datetime(2026, 3, 1, tzinfo=UTC)
# The 300k-event window: UTC hours 19 and 20, the generator's evening peak.
WINDOW_START = datetime(2026, 3, 1, 19, tzinfo=UTC)
WINDOW_HOURS = 2
WINDOW_EVENTS = 300_000
WINDOW_TOLERANCE = 0.10
# What the generator writes per session on average (measured on both demo sites: 36.7 and 37.0),
# to size the scaled-up site before generating; the real counts are checked afterwards.
EVENTS_PER_SESSION = 36.8
# Above this many events, the benchmark spans more than one day rather than a busier day.
MAX_EVENTS_PER_DAY = 1_500_000
# Readers grow with sessions (as in the site's YAML) up to this many: the generator draws each
# session's reader over the whole pool, so a bigger pool only makes generating slower.
MAX_READERS = 20_000

# Issue 32's goals, each against a reader measured in the same run.
GOAL_FASTEST_SHARE = 0.7  # project total events/s >= 0.7 of zlib-ng+duckdb-2's (parse only)
GOAL_DAY_SHARE = 0.5  # the day in 2-hour windows (context from storage) >= 0.5 of zlib-ng+duckdb-2's
GOAL_WINDOW_RSS_MB = 600.0  # peak RSS on one 300k-event window <= 600 MB
GOAL_SMALL_STEP_SECONDS = 0.15  # a 10,000-event window's ingest_window step (a scheduled run's)
# The small window: a site whose 12:00-14:00 window holds about this many event lines, ingested
# through Dagster (its day before as one range run, as a backfill runs it, then that window alone).
SMALL_WINDOW_EVENTS = 10_000
SMALL_DAY = datetime(2026, 3, 1, tzinfo=UTC)
SMALL_TICK = datetime(2026, 3, 2, 12, tzinfo=UTC)

GZIP_MAGIC = b"\x1f\x8b"
RESULT_MARK = "BENCH_RESULT "
# The fields the previous job picked from each JSON line.
OLD_JOB_FIELDS = (
    "event_id",
    "event_name",
    "domain_userid",
    "domain_sessionid",
    "page_urlpath",
    "collector_tstamp",
    "dvce_created_tstamp",
    "useragent",
    "page_urlhost",
)
READERS = (
    "project",
    "baseline",
    "pyarrow",
    "duckdb-1",
    "duckdb-2",
    "zlib-ng+duckdb-2",
    "duckdb-lines-2",
    "duckdb-sessions-2",
    "inflate-zlib",
    "inflate-zlib-ng",
)
# The inflate ceiling: the same objects only decompressed, an object per thread on both cores.
INFLATE_THREADS = 2


# ---------------------------------------------------------------------------------------------
# Children: one reader, one run, in a fresh interpreter; the result is one JSON line on stdout.


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _vm_hwm_mb() -> float | None:
    """The kernel's high-water mark of this process's RSS (Linux), to cross-check ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _spec_times(spec: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"])


def _project_path(spec: dict) -> dict:
    import pandas as pd

    from article_rec_assets.ingestion.cleaning import clean_window
    from article_rec_assets.ingestion.parsing import parse_objects
    from article_rec_assets.ingestion.sessions import sessionize
    from article_rec_assets.resources import EventBucket
    from article_rec_assets.settings.sites import SiteConfig

    site = SiteConfig.model_validate_json(spec["site"])
    start, end = _spec_times(spec)
    bucket = EventBucket(root_dir=spec["root"])
    # As the asset does: a collector timestamp past this is quarantined as implausible.
    received_before = pd.Timestamp(end) + pd.Timedelta(minutes=site.events.max_future_minutes)
    rss_imports = _peak_rss_mb()

    started = time.perf_counter()
    window = parse_objects(bucket.window_objects(site, start, end), received_before)
    parsed = time.perf_counter()
    rss_parse = _peak_rss_mb()
    cleaned = clean_window(window, parse_objects([]), site.events)
    sessions = sessionize(cleaned.events, site)
    finished = time.perf_counter()
    return _timed(
        started,
        finished,
        rss_imports,
        parse_seconds=parsed - started,
        rss_parse_mb=rss_parse,
        objects=window.objects_read,
        lines_read=window.lines_read,
        parsed_rows=len(window.events),
        rejected_lines=len(window.rejects),
        clean_events=len(cleaned.events),
        interactions=len(sessions.interactions),
    )


def _day_in_windows(spec: dict, stored: bool) -> dict:
    """The full data ingested window by window, oldest first, as the asset does: the context from
    the earlier windows' stored deliveries and state (`stored`, through Parquet bytes as the IO
    manager writes them), or re-read from the bucket for every window (as before carrying)."""
    import io as _io

    import pandas as pd

    from article_rec_assets.ingestion.sessions import sessionize
    from article_rec_assets.ingestion.window_events import delivered_events, ingest_events, state_windows
    from article_rec_assets.resources import EventBucket
    from article_rec_assets.settings.sites import SiteConfig

    def through_parquet(frame: pd.DataFrame) -> pd.DataFrame:
        buffer = _io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return pd.read_parquet(_io.BytesIO(buffer.getvalue()))

    site = SiteConfig.model_validate_json(spec["site"])
    start, end = _spec_times(spec)
    bucket = EventBucket(root_dir=spec["root"])
    rss_imports = _peak_rss_mb()
    delivered: dict = {}
    states: list = []
    windows = context_lines = own_lines = events = 0
    started = time.perf_counter()
    window_start = start
    while window_start < end:
        read, cleaned = ingest_events(
            lambda a, b: bucket.window_objects(site, a, b),
            window_start,
            window_start + timedelta(hours=WINDOW_HOURS),
            site.events,
            stored=dict(delivered) if stored else None,
            earlier_states=states[-state_windows(site.events) :] if stored else (),
        )
        sessionize(cleaned.events, site)
        if stored:
            delivered[window_start] = through_parquet(delivered_events(read.window))
            delivered.pop(window_start - timedelta(hours=site.events.lookback_hours), None)  # as loaded
            states.append(through_parquet(cleaned.state))
        windows += 1
        own_lines += read.window.lines_read
        context_lines += read.context.lines_read
        events += len(cleaned.events)
        window_start += timedelta(hours=WINDOW_HOURS)
    finished = time.perf_counter()
    return _timed(
        started,
        finished,
        rss_imports,
        windows=windows,
        lines_read=own_lines,
        context_lines_read=context_lines,
        clean_events=events,
    )


def _baseline(spec: dict) -> dict:
    import pandas as pd

    root = Path(spec["root"])
    paths = [root / key for key in spec["files"]]
    rss_imports = _peak_rss_mb()

    started = time.perf_counter()
    rows = []
    bad_lines = bad_objects = 0
    for path in paths:
        data = path.read_bytes()
        try:
            text = gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
        except (EOFError, OSError, zlib.error):
            bad_objects += 1  # a damaged gzip object: skipped whole
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError (TSV lines land here too)
                bad_lines += 1
                continue
            if not isinstance(obj, dict):
                bad_lines += 1
                continue
            rows.append({name: obj.get(name) for name in OLD_JOB_FIELDS})
    frame = pd.DataFrame(rows)
    finished = time.perf_counter()
    return _timed(
        started, finished, rss_imports, rows=len(frame), skipped_lines=bad_lines, skipped_objects=bad_objects
    )


def _pyarrow(spec: dict) -> dict:
    import pyarrow as pa
    import pyarrow.json as pj

    from article_rec_assets.ingestion.formats import JSON_SCHEMA

    parse = pj.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")
    read = pj.ReadOptions(use_threads=spec["pyarrow_threads"])
    root = Path(spec["root"])
    paths = [root / key for key in spec["files"]]
    rss_imports = _peak_rss_mb()

    started = time.perf_counter()
    tables = []
    for path in paths:
        data = path.read_bytes()
        text = gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
        tables.append(pj.read_json(io.BytesIO(text), read_options=read, parse_options=parse))
    table = pa.concat_tables(tables)
    finished = time.perf_counter()
    return _timed(started, finished, rss_imports, rows=table.num_rows)


def _duckdb_type(arrow_type) -> str:
    """The DuckDB type of a JSON_SCHEMA field (strings, numbers, booleans, structs and lists)."""
    import pyarrow as pa

    if pa.types.is_list(arrow_type):
        return _duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f'"{f.name}" {_duckdb_type(f.type)}' for f in arrow_type)
        return f"STRUCT({fields})"
    scalar = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    return scalar[arrow_type]


def _timed(started: float, finished: float, rss_imports: float, **counts) -> dict:
    """A reader's result: its seconds, its memory, and what it counted."""
    return {
        "seconds": finished - started,
        "rss_imports_mb": rss_imports,
        "peak_rss_mb": _peak_rss_mb(),
        "vm_hwm_mb": _vm_hwm_mb(),
        **counts,
    }


def _duckdb(spec: dict, threads: int) -> dict:
    """DuckDB's read_json over the objects (it inflates them itself), the project's fields as
    explicit columns, into one Arrow table: the near-limit parse reference."""
    # Imported before the timed part, as the other readers' modules are.
    import duckdb  # noqa: F401

    from article_rec_assets.ingestion.formats import JSON_SCHEMA  # noqa: F401

    root = Path(spec["root"])
    paths = [str(root / key) for key in spec["files"]]
    rss_imports = _peak_rss_mb()
    started = time.perf_counter()
    table = _duckdb_read(paths, threads, "compression='gzip'")
    finished = time.perf_counter()
    return _timed(started, finished, rss_imports, rows=table.num_rows)


def _duckdb_read(paths: list[str], threads: int, options: str = ""):
    """DuckDB's read_json over `paths` into one Arrow table, the project's fields as explicit
    columns typed as JSON_SCHEMA types them (the contexts as lists of structs)."""
    import duckdb

    connection = duckdb.connect(config={"threads": threads})
    return connection.sql(_duckdb_query(paths, options)).to_arrow_table()


def _duckdb_query(paths: list[str], options: str = "") -> str:
    from article_rec_assets.ingestion.formats import JSON_SCHEMA

    columns = "{" + ", ".join(f"'{f.name}': '{_duckdb_type(f.type)}'" for f in JSON_SCHEMA) + "}"
    return (
        f"SELECT * FROM read_json({paths!r}, format='newline_delimited', columns={columns}, "
        f"maximum_object_size=134217728{', ' + options if options else ''})"
    )


# What the project's cleaning and sessions do, as far as one SQL query over DuckDB's parse can do
# it without the quarantine, the context, the carried state or AMP: each event once (its earliest
# copy), page paths without query or trailing /amp, bots by user agent, each page view's
# heartbeat windows (5 s for the first, 10 s for each further one), rows per reader, session,
# path and day.
DUCKDB_SESSIONS_SQL = """
WITH once AS (
  SELECT arg_min(COLUMNS(* EXCLUDE (event_id)), TRY_CAST(collector_tstamp AS TIMESTAMPTZ)), event_id
  FROM events WHERE regexp_matches(event_id, '^[0-9a-fA-F-]{36}$') GROUP BY event_id),
typed AS (
  SELECT event_name, domain_userid AS reader, domain_sessionid AS session,
         contexts_com_snowplowanalytics_snowplow_web_page_1[1].id AS page_view,
         regexp_replace(split_part(page_urlpath, '?', 1), '/amp/?$', '/') AS path,
         TRY_CAST(dvce_created_tstamp AS TIMESTAMPTZ) AS created, useragent FROM once),
views AS (
  SELECT reader, session, page_view, any_value(path) AS path, date_trunc('day', min(created)) AS day,
     count(*) FILTER (WHERE event_name = 'page_view') AS views,
     count(*) FILTER (WHERE event_name = 'page_ping') AS pings,
     CASE WHEN count(*) FILTER (WHERE event_name = 'page_ping') > 0 THEN 5 + 10 * (
       count(DISTINCT epoch(created)::BIGINT // 10) FILTER (WHERE event_name = 'page_ping') - 1) ELSE 0 END
       AS engaged,
     min(created) AS first, max(created) AS last
  FROM typed WHERE NOT regexp_matches(coalesce(useragent, ''), 'bot|crawl|spider', 'i') GROUP BY ALL)
SELECT reader, session, path, day, sum(views), sum(pings), sum(engaged), min(first), max(last)
FROM views GROUP BY ALL
"""


def _inflate_then_duckdb(spec: dict, sessions: bool = False) -> dict:
    """The best two-stage reader found: zlib-ng inflates the objects on both cores into a RAM
    folder (/dev/shm where there is one), then DuckDB parses the text on both cores, the
    project's fields as explicit columns. Its time is split into the two stages."""
    from concurrent.futures import ThreadPoolExecutor

    import duckdb  # imported before the timed part, as the other readers' modules are
    from zlib_ng import zlib_ng

    from article_rec_assets.ingestion.formats import JSON_SCHEMA  # noqa: F401

    root = Path(spec["root"])
    datas = [(root / key).read_bytes() for key in spec["files"]]
    rss_imports = _peak_rss_mb()
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=ram) as folder:

        def inflate(item: tuple[int, bytes]) -> str:
            index, data = item
            decompressor = zlib_ng.decompressobj(zlib_ng.MAX_WBITS | 16)
            path = Path(folder) / f"{index}.json"
            path.write_bytes(decompressor.decompress(data) + decompressor.flush())
            return str(path)

        started = time.perf_counter()
        with ThreadPoolExecutor(INFLATE_THREADS) as pool:
            files = list(pool.map(inflate, enumerate(datas)))
        inflated = time.perf_counter()
        if sessions:
            connection = duckdb.connect(config={"threads": 2})
            connection.sql(f"CREATE TABLE events AS {_duckdb_query(files)}")
            table = connection.sql(DUCKDB_SESSIONS_SQL).to_arrow_table()
        else:
            table = _duckdb_read(files, threads=2)
        finished = time.perf_counter()
    return _timed(started, finished, rss_imports, rows=table.num_rows, inflate_seconds=inflated - started)


def _duckdb_lines(spec: dict) -> dict:
    """DuckDB parsing each line on its own (one row per line, NULL where a line is not the JSON
    the columns need, so every line keeps a verdict), on two threads: the objects inflated by
    zlib-ng into memory, their lines handed to DuckDB as one Arrow string column over the text
    (no copy). Lines that are not UTF-8 are left out first, as the project finds them."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from article_rec_assets.ingestion.compression import decompress, line_bounds
    from article_rec_assets.ingestion.formats import JSON_SCHEMA
    from article_rec_assets.ingestion.parsing import _undecodable_lines

    structure = "{" + ", ".join(f'"{f.name}": {_duckdb_json_type(f.type)}' for f in JSON_SCHEMA) + "}"
    connection = duckdb.connect(config={"threads": 2})
    root = Path(spec["root"])
    datas = [(root / key).read_bytes() for key in spec["files"]]
    rss_imports = _peak_rss_mb()
    started = time.perf_counter()
    rows = parsed = 0
    for data in datas:
        text, intact, _ = decompress(data)
        starts, ends, _ = line_bounds(text, intact)
        if not len(starts):
            continue
        # Line i is text[starts[i]:starts[i + 1]]: its line end is trailing white space to JSON.
        offsets = np.append(starts, ends[-1]).astype(np.int64)
        lines = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(text))
        keep = np.ones(len(starts), dtype=bool)
        keep[_undecodable_lines(text, starts)] = False
        numbered = pa.table({"line": lines, "number": np.arange(1, len(starts) + 1)}).filter(pa.array(keep))
        connection.register("numbered", numbered)
        result = connection.sql(
            f"SELECT number, try(from_json(line, '{structure}')) AS event FROM numbered"
        ).to_arrow_table()
        rows += result.num_rows
        parsed += result.num_rows - result.column("event").null_count
    finished = time.perf_counter()
    return _timed(started, finished, rss_imports, rows=rows, parsed_rows=parsed)


def _duckdb_json_type(arrow_type) -> str:
    """The JSON structure DuckDB's from_json takes for an Arrow type of JSON_SCHEMA."""
    import pyarrow as pa

    if pa.types.is_list(arrow_type):
        return "[" + _duckdb_json_type(arrow_type.value_type) + "]"
    if pa.types.is_struct(arrow_type):
        return "{" + ", ".join(f'"{f.name}": {_duckdb_json_type(f.type)}' for f in arrow_type) + "}"
    return '"' + _duckdb_type(arrow_type) + '"'


def _small_window_step(spec: dict) -> dict:
    """The ingest_window step of a ~10,000-event window, through Dagster in this process on a
    SQLite instance (the embedded default): the day before it as one range run (as a backfill
    runs it), then the window alone, as the schedule's run does. The step's seconds are its
    STEP_START to STEP_SUCCESS in the event log: the work, without a run's process start."""
    from dagster import AssetSelection, DagsterEventType, DagsterInstance, materialize
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from article_rec_assets.definitions import all_assets
    from article_rec_assets.io_managers import ParquetIOManager, PickleIOManager
    from article_rec_assets.partitions import site_key, window_key
    from article_rec_assets.resources import CatalogueSources, EventBucket, ServingDatabase

    root, storage = Path(spec["root"]), Path(spec["storage"])
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    resources = {
        "event_bucket": EventBucket(root_dir=str(root)),
        "catalogue_sources": CatalogueSources(files_dir=str(root)),
        "serving_database": ServingDatabase(url=f"sqlite:///{storage / 'serving.db'}"),
        "table_io_manager": ParquetIOManager(base_dir=str(storage)),
        "io_manager": PickleIOManager(base_dir=str(storage)),
    }
    selection = AssetSelection.assets(site_key(SITE_NAME, "raw_events")).required_multi_asset_neighbors()
    step = timedelta(hours=WINDOW_HOURS)
    rss_imports = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as home, DagsterInstance.local_temp(home) as instance:

        def step_seconds(result) -> float:
            times = {
                record.dagster_event.event_type: record.timestamp
                for record in instance.all_logs(result.run_id)
                if record.dagster_event is not None
            }
            return times[DagsterEventType.STEP_SUCCESS] - times[DagsterEventType.STEP_START]

        def events_of(start: datetime) -> int:
            records = instance.fetch_materializations(site_key(SITE_NAME, "raw_events"), limit=100).records
            return next(
                int(r.asset_materialization.metadata["dagster/row_count"].value)
                for r in records
                if r.partition_key == window_key(start)
            )

        last = SMALL_TICK - step
        backfill = materialize(
            all_assets,
            selection=selection,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: window_key(SMALL_DAY),
                ASSET_PARTITION_RANGE_END_TAG: window_key(last),
            },
            resources=resources,
            instance=instance,
        )
        windows = int((last - SMALL_DAY) / step) + 1
        range_events = sum(events_of(SMALL_DAY + step * i) for i in range(windows))
        started = time.perf_counter()
        tick = materialize(
            all_assets,
            selection=selection,
            partition_key=window_key(SMALL_TICK),
            resources=resources,
            instance=instance,
        )
        finished = time.perf_counter()
        floor = statistics.median(
            step_seconds(
                materialize(
                    [_empty_window_step()],
                    partition_key=window_key(SMALL_TICK - step * i),
                    instance=instance,
                    resources=resources,
                )
            )
            for i in range(5)
        )
        return _timed(
            started,
            finished,
            rss_imports,
            floor_step_seconds=floor,
            tick_events=events_of(SMALL_TICK),
            tick_step_seconds=step_seconds(tick),
            range_windows=windows,
            range_events=range_events,
            range_step_seconds=step_seconds(backfill),
        )


def _empty_window_step():
    """A step of ingest_window's shape that does no work: four window outputs with metadata and
    four checks. Its step time is what Dagster's machinery costs such a step on the instance."""
    from dagster import AssetCheckResult, AssetCheckSpec, AssetOut, Output, multi_asset

    from article_rec_assets.partitions import window_partitions

    names = ("empty_a", "empty_b", "empty_c", "empty_d")

    @multi_asset(
        outs={name: AssetOut() for name in names},
        partitions_def=window_partitions(SITE_NAME),
        check_specs=[AssetCheckSpec(f"check_{i}", asset=names[0]) for i in range(4)],
    )
    def empty_window(context):
        for name in names:
            context.add_output_metadata({"dagster/row_count": 0}, output_name=name)
            yield Output(None, output_name=name)
        for i in range(4):
            yield AssetCheckResult(check_name=f"check_{i}", passed=True, asset_key=names[0])

    return empty_window


def generate_small(root: Path, noise: dict) -> dict:
    """The small site: its 12:00-14:00 window of SMALL_TICK's day holds about SMALL_WINDOW_EVENTS
    lines; the data runs from SMALL_DAY to that window's end."""
    shares = _hour_shares()
    window_share = sum(shares[(SMALL_TICK.hour + h) % 24] for h in range(WINDOW_HOURS))
    sessions_per_day = math.ceil(SMALL_WINDOW_EVENTS / (EVENTS_PER_SESSION * window_share))
    hours = int((SMALL_TICK - SMALL_DAY) / timedelta(hours=1)) + WINDOW_HOURS
    info = _generate(root, sessions_per_day, SMALL_DAY, hours, noise)
    info.update(scan(info, None))
    return info


def _inflate_only(spec: dict, module: str) -> dict:
    """Only decompress the objects, INFLATE_THREADS at a time (zlib and zlib-ng release the GIL):
    the ceiling of any reader that inflates them. A damaged stream is inflated up to the damage."""
    from concurrent.futures import ThreadPoolExecutor

    if module == "zlib-ng":
        from zlib_ng import zlib_ng as inflater
    else:
        inflater = zlib
    root = Path(spec["root"])
    paths = [root / key for key in spec["files"]]
    datas = [path.read_bytes() for path in paths]  # read first: the ceiling is inflating
    rss_imports = _peak_rss_mb()

    def inflate(data: bytes) -> int:
        if data[:2] != GZIP_MAGIC:
            return data.count(b"\n")
        out = 0
        decompressor = inflater.decompressobj(inflater.MAX_WBITS | 16)
        for start in range(0, len(data), 1 << 20):
            try:
                out += decompressor.decompress(data[start : start + (1 << 20)]).count(b"\n")
            except inflater.error:
                break
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(INFLATE_THREADS) as pool:
        lines = sum(pool.map(inflate, datas))
    finished = time.perf_counter()
    return _timed(started, finished, rss_imports, rows=lines)


def _profile(spec: dict) -> None:
    """cProfile the project path, worker threads included (parse_objects parses objects in a
    thread pool, which a profiler of the main thread does not see)."""
    import cProfile
    import pstats
    import threading
    from concurrent.futures import ThreadPoolExecutor

    task_profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    submit = ThreadPoolExecutor.submit

    def profiled_submit(self, fn, /, *args, **kwargs):
        def run():
            profiler = cProfile.Profile()
            try:
                profiler.enable()
            except ValueError:  # Python >= 3.12 allows one profiler at a time
                return fn(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                profiler.disable()
                with lock:
                    task_profiles.append(profiler)

        return submit(self, run)

    ThreadPoolExecutor.submit = profiled_submit
    # Imported before profiling, so that the profile shows the work and not the imports.
    import article_rec_assets.ingestion.parsing
    import article_rec_assets.ingestion.sessions
    import article_rec_assets.resources  # noqa: F401

    profiler = cProfile.Profile()
    profiler.enable()
    result = _project_path(spec)
    profiler.disable()
    ThreadPoolExecutor.submit = submit
    print(
        f"project path on {result['lines_read']:,} lines of {result['objects']} objects: "
        f"{result['seconds']:.2f} s under cProfile (parse_objects {result['parse_seconds']:.2f} s), "
        f"{result['clean_events']:,} clean events, {result['interactions']:,} interactions"
    )
    if task_profiles:
        print(
            f"{len(task_profiles)} tasks ran in worker threads; their profiles are merged with the main "
            f"thread's, so times spent in parallel add up (and the main thread's waits on them, "
            f"Future.result / Condition.wait, overlap the workers' own time)"
        )
    stats = pstats.Stats(profiler)
    for task in task_profiles:
        stats.add(task)
    for order in ("cumulative", "tottime"):
        print(f"\n--- top 15 by {order} ---")
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats(order).print_stats(15)
        text = stream.getvalue()
        # Keep the table (from its header on); drop pstats' preamble.
        header = text.find("   ncalls")
        print(text[header:].rstrip() if header >= 0 else text.rstrip())


def child_main(kind: str, spec_path: Path) -> None:
    """Run one reader (or the profile) as described by a spec file written by the parent."""
    spec = json.loads(spec_path.read_text())
    if kind == "profile":
        _profile(spec)
        return
    readers = {
        "project": _project_path,
        "day-bucket": lambda spec: _day_in_windows(spec, stored=False),
        "day-stored": lambda spec: _day_in_windows(spec, stored=True),
        "baseline": _baseline,
        "pyarrow": _pyarrow,
        "duckdb-1": lambda spec: _duckdb(spec, 1),
        "duckdb-2": lambda spec: _duckdb(spec, 2),
        "zlib-ng+duckdb-2": _inflate_then_duckdb,
        "duckdb-lines-2": _duckdb_lines,
        "duckdb-sessions-2": lambda spec: _inflate_then_duckdb(spec, sessions=True),
        "small-step": _small_window_step,
        "inflate-zlib": lambda spec: _inflate_only(spec, "zlib"),
        "inflate-zlib-ng": lambda spec: _inflate_only(spec, "zlib-ng"),
    }
    result = readers[kind](spec)
    print(RESULT_MARK + json.dumps(result), flush=True)


def run_child(
    kind: str, spec_path: Path | None, capture: bool = True, extra: list[str] | None = None
) -> dict:
    """Run one reader in a fresh interpreter: its result, or {"error": ...} when it failed.

    The parent stays small (it never imports pandas, pyarrow or the project, and generates
    nothing itself): a child's ru_maxrss starts from its parent's RSS at the fork."""
    command = [sys.executable, "-m", "bench.bench_ingestion", "--child", kind, *(extra or [])]
    if spec_path is not None:
        command += ["--spec", str(spec_path)]
    proc = subprocess.run(command, cwd=REPO, capture_output=capture, text=True, check=False)
    if proc.returncode != 0:
        if not capture:
            raise SystemExit(f"the {kind} child failed (exit {proc.returncode})")
        return {"error": _failure(proc.stderr, proc.returncode)}
    if not capture:
        return {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return {"error": f"no result printed; stderr: {proc.stderr[-500:]}"}


def _failure(stderr: str, returncode: int) -> str:
    """The exception of a failed child, and the innermost line of the project it came from."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return f"exit {returncode}, nothing on stderr"
    where = [line.strip() for line in lines if line.strip().startswith('File "') and "/article_rec" in line]
    message = "".join(c if c.isprintable() else "?" for c in lines[-1].strip())
    message = message if len(message) <= 160 else message[:160] + "..."
    if where:
        location = where[-1].replace(str(REPO) + "/", "")
        return f"{message} [{location}]"
    return message


# ---------------------------------------------------------------------------------------------
# Data: generated with the project's generator, then checked (and cleaned for pyarrow if needed)


def _generator_fingerprint() -> str:
    """A hash of the generator's source, so that kept data is regenerated after it changes."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "article_rec_assets" / "generator").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _noise_kwargs(mode: str) -> dict:
    """Arguments for the generator's dirty-data option (`noise`) when it has one."""
    from article_rec_demo.generator.clickstream import generate_site

    if mode == "auto":
        return {}  # whatever the generator writes by default
    if "noise" not in inspect.signature(generate_site).parameters:
        if mode == "off":
            return {}  # a generator without the option writes clean data
        raise SystemExit("--noise on: generate_site has no `noise` parameter (yet)")
    if mode == "off":
        return {"noise": None}
    from article_rec_demo.generator.noise import DEFAULT_NOISE

    return {"noise": DEFAULT_NOISE}


def _scaled_site(sessions_per_day: int):
    from article_rec_assets.settings.sites import load_sites

    site = load_sites()[SITE_NAME]
    demo = site.demo
    scaled = round(sessions_per_day * demo.readers / demo.sessions_per_day)
    readers = max(demo.readers, min(scaled, MAX_READERS))
    return site.model_copy(
        update={"demo": demo.model_copy(update={"sessions_per_day": sessions_per_day, "readers": readers})}
    )


def _hour_shares():
    from article_rec_demo.generator.clickstream import HOURLY_TRAFFIC

    return HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum()


def _generate(root: Path, sessions_per_day: int, start: datetime, hours: int, noise: dict) -> dict:
    from article_rec_demo.generator.clickstream import generate_site

    if root.exists():
        shutil.rmtree(root)
    site = _scaled_site(sessions_per_day)
    began = time.perf_counter()
    summary = generate_site(site, root, start, start + timedelta(hours=hours), **noise)
    return {
        "root": str(root),
        "site": site.model_dump_json(),
        "start": start.isoformat(),
        "end": (start + timedelta(hours=hours)).isoformat(),
        "hours": hours,
        "sessions_per_day": sessions_per_day,
        "readers": site.demo.readers,
        "seed": site.demo.seed,
        "generated_events": summary.events,
        "generated_sessions": summary.sessions,
        "generate_seconds": round(time.perf_counter() - began, 1),
    }


def generate_full(root: Path, clean_root: Path, target: int, noise: dict) -> dict:
    """At least `target` events (generated, and lines readable in the files): a day of the site
    scaled up, over as many hours as it takes."""
    shares = _hour_shares()
    sessions_per_day = math.ceil(min(target, MAX_EVENTS_PER_DAY) * 1.04 / EVENTS_PER_SESSION)
    per_hour = [sessions_per_day * EVENTS_PER_SESSION * s for s in shares]
    hours, expected = 0, 0.0
    while expected < target * 1.03:
        expected += per_hour[(FULL_START.hour + hours) % 24]
        hours += 1
    for _ in range(4):
        info = _generate(root, sessions_per_day, FULL_START, hours, noise)
        info.update(scan(info, clean_root))
        got = min(info["generated_events"], info["lines"])
        if got >= target:
            return info
        hours += math.ceil((target - got) / (got / hours) * 1.2) + 1
        print(f"  {got:,} events are too few: generating {hours} hours instead", flush=True)
    raise SystemExit(f"could not generate {target:,} events (last try: {got:,})")


def generate_window(root: Path, noise: dict) -> dict:
    """About WINDOW_EVENTS lines readable in the files, all in the WINDOW_HOURS hour folders from
    WINDOW_START (the generator's dirt, e.g. a truncated object, may take some: then rescaled)."""
    shares = _hour_shares()
    window_share = sum(shares[(WINDOW_START.hour + h) % 24] for h in range(WINDOW_HOURS))
    # A pilot at a fifth of the scale tells how many lines a session/day makes in the files, with
    # the generator's dirt (a truncated object loses part of an hour) and the cut at the end.
    pilot_sessions = math.ceil(WINDOW_EVENTS / (EVENTS_PER_SESSION * window_share) / 5)
    pilot = _generate(root, pilot_sessions, WINDOW_START, WINDOW_HOURS, noise)
    pilot.update(scan(pilot, None))
    sessions_per_day = math.ceil(pilot_sessions * WINDOW_EVENTS / max(pilot["lines"], 1))
    best = None
    for _ in range(3):
        info = _generate(root, sessions_per_day, WINDOW_START, WINDOW_HOURS, noise)
        info.update(scan(info, None))
        if best is None or abs(info["lines"] - WINDOW_EVENTS) < abs(best["lines"] - WINDOW_EVENTS):
            best = info
        if abs(info["lines"] - WINDOW_EVENTS) <= WINDOW_TOLERANCE * WINDOW_EVENTS:
            return info
        print(f"  {info['lines']:,} lines in the window's files: rescaling", flush=True)
        sessions_per_day = math.ceil(sessions_per_day * WINDOW_EVENTS / info["lines"])
    if best is not info:  # the closest try was an earlier one: write it again
        info = _generate(root, best["sessions_per_day"], WINDOW_START, WINDOW_HOURS, noise)
        info.update(scan(info, None))
    return info


def _gunzip_tolerant(data: bytes) -> tuple[bytes, bool]:
    """The text of an object and whether it was intact; of a damaged gzip, the complete lines
    before the damage."""
    if data[:2] != GZIP_MAGIC:
        return data, True
    try:
        return gzip.decompress(data), True
    except (EOFError, OSError, zlib.error):
        pass
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = []
    for offset in range(0, len(data), 1 << 16):
        try:
            out.append(decompressor.decompress(data[offset : offset + (1 << 16)]))
        except zlib.error:
            break
    text = b"".join(out)
    return text[: text.rfind(b"\n") + 1], False


class _PyarrowCheck:
    """Whether pyarrow's reader (as reader c runs it) accepts a text, and its accepted lines."""

    def __init__(self):
        import pyarrow.json as pj

        from article_rec_assets.ingestion.formats import JSON_SCHEMA

        self._pj = pj
        self._parse = pj.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")
        self._read = pj.ReadOptions(use_threads=False)  # threads or not, the same lines pass

    def reads(self, text: bytes) -> bool:
        import pyarrow as pa

        if not text.strip():
            return False  # pyarrow: "Empty JSON file"
        try:
            self._pj.read_json(io.BytesIO(text), read_options=self._read, parse_options=self._parse)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return False
        return True

    def good_lines(self, lines: list[bytes]) -> list[bytes]:
        """The lines pyarrow accepts, found by halving the blocks it refuses."""
        if not lines or self.reads(b"\n".join(lines) + b"\n"):
            return lines
        if len(lines) == 1:
            return []
        middle = len(lines) // 2
        return self.good_lines(lines[:middle]) + self.good_lines(lines[middle:])


def _is_json_object(line: bytes) -> bool:
    import orjson

    if line[:1] != b"{":
        return False
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def scan(info: dict, clean_root: Path | None) -> dict:
    """Count the objects, lines and bytes of a generated dataset, in the order the project reads
    them; with `clean_root`, also write the copy that pyarrow reads whole (only if one is needed)."""
    from article_rec_assets.resources import EventBucket
    from article_rec_assets.settings.sites import SiteConfig

    site = SiteConfig.model_validate_json(info["site"])
    start, end = _spec_times(info)
    began = time.perf_counter()
    check = _PyarrowCheck() if clean_root is not None else None
    if clean_root is not None and clean_root.exists():
        shutil.rmtree(clean_root)
    stats = {"files": [], "objects": 0, "lines": 0, "gz_bytes": 0, "raw_bytes": 0, "damaged_objects": 0}
    clean = {"files": [], "objects": 0, "lines": 0, "dropped_lines": 0, "dropped_objects": 0}
    dirty_objects = 0
    for key, data in EventBucket(root_dir=info["root"]).window_objects(site, start, end):
        text, intact = _gunzip_tolerant(data)
        lines = [line for line in text.split(b"\n") if line.strip()]
        stats["files"].append(key)
        stats["objects"] += 1
        stats["lines"] += len(lines)
        stats["gz_bytes"] += len(data)
        stats["raw_bytes"] += len(text)
        stats["damaged_objects"] += not intact
        if check is None:
            continue
        target = clean_root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Lines that are not JSON objects (TSV, ...) make an object dirty without asking pyarrow.
        if intact and all(line[:1] == b"{" for line in lines) and check.reads(text):
            good = lines
            try:
                os.link(Path(info["root"]) / key, target)
            except OSError:
                shutil.copyfile(Path(info["root"]) / key, target)
        else:
            dirty_objects += 1
            good = check.good_lines([line for line in lines if _is_json_object(line)])
            if good and not check.reads(b"\n".join(good) + b"\n"):
                good = [line for line in good if check.reads(line)]  # not seen so far
            if good:  # gzip level 5, as the generator writes
                target.write_bytes(gzip.compress(b"\n".join(good) + b"\n", compresslevel=5, mtime=0))
        clean["dropped_lines"] += len(lines) - len(good)
        if good:
            clean["files"].append(key)
            clean["objects"] += 1
            clean["lines"] += len(good)
        else:
            clean["dropped_objects"] += 1
    stats["scan_seconds"] = round(time.perf_counter() - began, 1)
    if check is not None:
        if dirty_objects:
            stats["clean"] = {**clean, "root": str(clean_root), "dirty_objects": dirty_objects}
        else:
            shutil.rmtree(clean_root)
            stats["clean"] = None
    return stats


def prepare(workdir: Path, args: argparse.Namespace) -> dict:
    """Generate and check the data (or find it, with --keep) and write the manifest."""
    params = {
        "version": MANIFEST_VERSION,
        "events": args.events,
        "site": SITE_NAME,
        "noise": args.noise,
        "generator": _generator_fingerprint(),
    }
    manifest_path = workdir / "manifest.json"
    if args.keep and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params:
            print(f"reusing the data in {workdir} (--keep, same parameters and generator)", flush=True)
            return manifest
        print(f"{workdir} holds data of other parameters or another generator: regenerating", flush=True)
    manifest_path.unlink(missing_ok=True)
    noise = _noise_kwargs(args.noise)

    print(f"generating >= {args.events:,} events into {workdir / 'full'} ...", flush=True)
    full = generate_full(workdir / "full", workdir / "clean", args.events, noise)
    print(f"generating a {WINDOW_HOURS}-hour window of ~{WINDOW_EVENTS:,} events ...", flush=True)
    window = generate_window(workdir / "window", noise)
    print(f"generating a site of ~{SMALL_WINDOW_EVENTS:,} events per 2-hour window at noon ...", flush=True)
    small = generate_small(workdir / "small", noise)
    manifest = {"params": params, "full": full, "window": window, "small": small}
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def _describe_dataset(name: str, data: dict) -> None:
    print(
        f"{name}: {data['generated_events']:,} events generated ({data['generated_sessions']:,} sessions; "
        f"site {SITE_NAME} at {data['sessions_per_day']:,} sessions/day, {data['readers']:,} readers, "
        f"seed {data['seed']}; {data['hours']} hours from {data['start'][:16]}Z; "
        f"generated in {data['generate_seconds']} s, counted/checked in {data['scan_seconds']} s)"
    )
    print(
        f"  {data['objects']} objects, {data['lines']:,} lines, {data['gz_bytes'] / 1e6:,.1f} MB gzip, "
        f"{data['raw_bytes'] / 1e6:,.1f} MB uncompressed, {data['damaged_objects']} damaged gzip objects"
    )


# ---------------------------------------------------------------------------------------------
# The benchmark


def _write_spec(
    workdir: Path, name: str, data: dict, files: list[str], root: str, threads: bool, **extra: str
) -> Path:
    spec = {
        **extra,
        "root": root,
        "site": data["site"],
        "start": data["start"],
        "end": data["end"],
        "files": files,
        "pyarrow_threads": threads,
    }
    path = workdir / "specs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _row(label: str, events: int, runs: list[float], peak: float, imports: float) -> str:
    median = statistics.median(runs)
    shown = ", ".join(f"{r:.2f}" for r in runs)
    return (
        f"{label:<58} {events:>10,} {median:>9.2f} {events / median:>12,.0f} {peak:>9,.0f} "
        f"{imports:>9,.0f}   {shown}"
    )


def benchmark(workdir: Path, manifest: dict, args: argparse.Namespace) -> bool:
    """Run and report; False when a reader failed to run."""
    full, window = manifest["full"], manifest["window"]
    threads = args.pyarrow_threads
    clean = full.get("clean")
    original = _write_spec(workdir, "original", full, full["files"], full["root"], threads)
    specs = {reader: original for reader in READERS}
    inputs = {reader: full["lines"] for reader in READERS}
    if clean:  # the parsers that refuse bad lines read a cleaned copy of the same events
        cleaned = _write_spec(workdir, "pyarrow", full, clean["files"], clean["root"], threads)
        for reader in ("pyarrow", "duckdb-1", "duckdb-2", "zlib-ng+duckdb-2", "duckdb-sessions-2"):
            specs[reader], inputs[reader] = cleaned, clean["lines"]

    results: dict[str, list[dict]] = {reader: [] for reader in READERS}
    errors: dict[str, str] = {}
    for attempt in range(1, args.repeat + 1):
        # Interleaved, so that a slow spell of the machine does not hit one reader only.
        for reader in READERS:
            if reader in errors:
                continue  # a reader that failed once fails again on the same files
            result = run_child(reader, specs[reader])
            if "error" in result:
                errors[reader] = result["error"]
                print(f"  run {attempt}/{args.repeat} {reader:<8} FAILED: {result['error']}", flush=True)
                continue
            results[reader].append(result)
            extra = f" (parse {result['parse_seconds']:.2f} s)" if reader == "project" else ""
            if "inflate_seconds" in result:
                extra = f" (inflate {result['inflate_seconds']:.2f} s)"
            print(
                f"  run {attempt}/{args.repeat} {reader:<8} {result['seconds']:7.2f} s{extra}, "
                f"peak RSS {result['peak_rss_mb']:,.0f} MB",
                flush=True,
            )
    window_spec = _write_spec(workdir, "window", window, window["files"], window["root"], threads)
    window_result = run_child("project", window_spec)
    if "error" in window_result:
        print(f"  window   project  FAILED: {window_result['error']}", flush=True)
    else:
        print(
            f"  window   project  {window_result['seconds']:7.2f} s, "
            f"peak RSS {window_result['peak_rss_mb']:,.0f} MB",
            flush=True,
        )

    # The whole data in 2-hour windows, as the schedule ingests it: context re-read from the bucket
    # for every window (as before) against carried from the earlier windows' stored outputs.
    days = {kind: run_child(kind, original) for kind in ("day-bucket", "day-stored")}
    for kind, result in days.items():
        if "error" in result:
            print(f"  {kind:<10} FAILED: {result['error']}", flush=True)
        else:
            print(
                f"  {kind:<10} {result['windows']} windows {result['seconds']:7.2f} s, "
                f"{result['lines_read']:,} own lines + {result['context_lines_read']:,} context lines "
                f"parsed, {result['clean_events']:,} events, peak RSS {result['peak_rss_mb']:,.0f} MB",
                flush=True,
            )

    small = manifest["small"]
    storage = str(workdir / "small-storage")
    small_spec = _write_spec(workdir, "small", small, small["files"], small["root"], threads, storage=storage)
    small_result = run_child("small-step", small_spec)
    if "error" in small_result:
        print(f"  small window step FAILED: {small_result['error']}", flush=True)
    else:
        print(
            f"  small    {small_result['tick_events']:,}-event window: ingest_window step "
            f"{small_result['tick_step_seconds']:.3f} s (the day before as one range run: "
            f"{small_result['range_windows']} windows, {small_result['range_events']:,} events, "
            f"step {small_result['range_step_seconds']:.2f} s)",
            flush=True,
        )

    project, baseline, arrow = results["project"], results["baseline"], results["pyarrow"]
    labels = {
        "parse": "a. project: parse_objects (incl. reading the files)",
        "project": "a. project: total (+ clean_window + sessionize)",
        "baseline": "b. baseline: gzip + json.loads + dicts + DataFrame",
        "pyarrow": "c. pyarrow read_json, JSON_SCHEMA, "
        + ("threads" if threads else "1 thread")
        + (", cleaned copy" if clean else ""),
        "duckdb-1": "d. DuckDB read_json, project fields, 1 thread" + (", cleaned" if clean else ""),
        "duckdb-2": "d. DuckDB read_json, project fields, 2 threads" + (", cleaned" if clean else ""),
        "zlib-ng+duckdb-2": "d. zlib-ng to RAM, then DuckDB, 2 threads each" + (", cleaned" if clean else ""),
        "duckdb-lines-2": "d. zlib-ng, then DuckDB line by line (from_json), 2 thr.",
        "duckdb-sessions-2": "d. zlib-ng+duckdb-2, then sessions in DuckDB SQL"
        + (", cleaned" if clean else ""),
        "inflate-zlib": f"e. inflate only, zlib, {INFLATE_THREADS} threads",
        "inflate-zlib-ng": f"e. inflate only, zlib-ng, {INFLATE_THREADS} threads (the ceiling)",
    }
    print()
    print(
        f"median of {args.repeat} runs, each in a fresh subprocess; events/s = input event lines / median s; "
        f"RSS = ru_maxrss of the child (max over runs)"
    )
    print(
        f"{'reader':<58} {'events':>10} {'median s':>9} {'events/s':>12} {'peak MB':>9} "
        f"{'import MB':>9}   runs (s)"
    )
    rows = {
        "parse": ("project", "parse_seconds", "rss_parse_mb"),
        "project": ("project", "seconds", "peak_rss_mb"),
        **{reader: (reader, "seconds", "peak_rss_mb") for reader in READERS if reader != "project"},
    }
    eps: dict[str, float] = {}
    for row, (reader, seconds, rss) in rows.items():
        if reader in errors:
            print(f"{labels[row]:<58} {inputs[reader]:>10,}   FAILED (the error is above)")
            continue
        runs = [r[seconds] for r in results[reader]]
        eps[row] = inputs[reader] / statistics.median(runs)
        peak = max(r[rss] for r in results[reader])
        imports = max(r["rss_imports_mb"] for r in results[reader])
        print(_row(labels[row], inputs[reader], runs, peak, imports))
    if "baseline" in eps:
        ratios = ", ".join(f"{row} {value / eps['baseline']:.2f}x" for row, value in eps.items())
        print(f"events/s against the baseline's: {ratios}")

    outputs = []
    if project:
        last = project[-1]
        outputs.append(
            f"project {last['lines_read']:,} lines read, {last['parsed_rows']:,} parsed rows, "
            f"{last['rejected_lines']:,} rejected lines, {last['clean_events']:,} clean events, "
            f"{last['interactions']:,} interactions"
        )
    if baseline:
        outputs.append(
            f"baseline {baseline[-1]['rows']:,} rows ({baseline[-1]['skipped_lines']:,} lines and "
            f"{baseline[-1]['skipped_objects']} damaged objects skipped)"
        )
    if arrow:
        outputs.append(f"pyarrow {arrow[-1]['rows']:,} rows")
    print("outputs: " + "; ".join(outputs))
    if clean:
        print(
            f"note: pyarrow refuses lines or objects of the generated files, so reader c ran on a "
            f"cleaned copy of the same events ({clean['dirty_objects']} objects rewritten, "
            f"{clean['dropped_lines']:,} lines and {clean['dropped_objects']} objects dropped); "
            f"readers a and b ran on the original files"
        )
    else:
        print("note: pyarrow reads every generated object whole, so all three readers ran on the same files")

    print()
    fastest = eps.get("zlib-ng+duckdb-2")
    if "project" in eps and fastest:
        share = eps["project"] / fastest
        passed, shown = share >= GOAL_FASTEST_SHARE, f"{share:.2f} of its events/s"
    else:
        passed, shown = False, "n/a (a reader failed)"
    print(
        f"project total vs zlib-ng+duckdb-2 (parse only): {shown} (goal >= {GOAL_FASTEST_SHARE:g}): "
        f"{_verdict(passed)}"
    )
    for row, name in (("baseline", "the old loop"), ("inflate-zlib-ng", "the inflate ceiling")):
        if "project" in eps and row in eps:
            print(f"project total vs {name}: {eps['project'] / eps[row]:.2f} of its events/s")
    if "parse" in eps and "duckdb-2" in eps:
        print(f"project parsing vs DuckDB (2 threads): {eps['parse'] / eps['duckdb-2']:.2f} of its events/s")
    if "duckdb-sessions-2" in eps and fastest:
        print(
            "DuckDB end to end (its parse, then each event once, sessions, heartbeats and rows per "
            "article in one SQL query; no quarantine, context or carried state) vs zlib-ng+duckdb-2: "
            f"{eps['duckdb-sessions-2'] / fastest:.2f} of its events/s"
        )
    if "duckdb-lines-2" in eps and "parse" in eps:
        print(
            "DuckDB line by line (a verdict per line, parse only) vs the project's parse: "
            f"{eps['duckdb-lines-2'] / eps['parse']:.2f} of its events/s"
        )
    label = f"one {WINDOW_HOURS}-hour window ({window['lines']:,} lines in {window['objects']} objects)"
    if "error" in window_result:
        print(f"{label}: project path FAILED (goal: peak RSS < {GOAL_WINDOW_RSS_MB:,.0f} MB): FAIL")
    else:
        peak = window_result["peak_rss_mb"]
        print(
            f"{label}, {window_result['seconds']:.2f} s: peak RSS {peak:,.0f} MB "
            f"(goal <= {GOAL_WINDOW_RSS_MB:,.0f} MB): {_verdict(peak <= GOAL_WINDOW_RSS_MB)}"
        )
    if not any("error" in r for r in days.values()):
        bucket_run, stored_run = days["day-bucket"], days["day-stored"]
        day_eps = full["lines"] / stored_run["seconds"]
        print(
            f"the data in {stored_run['windows']} windows: {stored_run['seconds']:.2f} s with the context "
            f"carried from storage vs {bucket_run['seconds']:.2f} s re-reading it from the bucket "
            f"({bucket_run['seconds'] / stored_run['seconds']:.2f}x); context lines parsed "
            f"{stored_run['context_lines_read']:,} vs {bucket_run['context_lines_read']:,}; "
            f"{day_eps:,.0f} events/s"
        )
        if fastest:
            share = day_eps / fastest
            print(
                f"the day in windows vs zlib-ng+duckdb-2: {share:.2f} of its events/s "
                f"(goal >= {GOAL_DAY_SHARE:g}): {_verdict(share >= GOAL_DAY_SHARE)}"
            )
    else:
        print(f"the day in windows: FAILED (goal >= {GOAL_DAY_SHARE:g} of zlib-ng+duckdb-2): FAIL")
    if "error" in small_result:
        print(f"the small window's step: FAILED (goal <= {GOAL_SMALL_STEP_SECONDS:g} s): FAIL")
    else:
        seconds, windows = small_result["tick_step_seconds"], small_result["range_windows"]
        verdict = _verdict(seconds <= GOAL_SMALL_STEP_SECONDS)
        print(
            f"the {small_result['tick_events']:,}-event window's ingest_window step (a run of its own): "
            f"{seconds:.3f} s (goal <= {GOAL_SMALL_STEP_SECONDS:g} s): {verdict}; in a range run "
            f"{small_result['range_step_seconds'] / windows:.3f} s a window "
            f"({small_result['range_events'] / windows:,.0f} events each); a step of its shape "
            f"doing nothing (4 window outputs, 4 checks): {small_result['floor_step_seconds']:.3f} s"
        )
    return (
        not errors
        and "error" not in window_result
        and "error" not in small_result
        and not any("error" in r for r in days.values())
    )


def _machine() -> str:
    from importlib.metadata import version  # not importing them keeps the parent small

    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pandas {version('pandas')}, pyarrow {version('pyarrow')}"
    )


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _cleanup(workdir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for name in ("full", "window", "clean", "specs"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    (workdir / "manifest.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_ingestion", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1M)")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data, and reuse it when it matches")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the median counts")
    parser.add_argument(
        "--noise",
        choices=("auto", "on", "off"),
        default="auto",
        help="dirty data: the generator's default (auto), or its `noise` option on / off",
    )
    parser.add_argument(
        "--pyarrow-threads",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="reader c with pyarrow's threads (pyarrow's default); without: one thread, as parse_objects",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the benchmark: cProfile the project path on the ~300k-event window",
    )
    parser.add_argument(
        "--child",
        choices=(*READERS, "day-bucket", "day-stored", "small-step", "profile", "prepare"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "prepare":
        prepare(args.workdir, args)
        return
    if args.child:
        child_main(args.child, args.spec)
        return
    if args.repeat < 1 or args.events < 1:
        parser.error("--events and --repeat must be positive")

    began = time.perf_counter()
    all_ran = True
    if args.workdir is None:
        workdir, created = Path(tempfile.mkdtemp(prefix="bench-ingestion-")), True
    else:
        workdir, created = args.workdir.resolve(), not args.workdir.exists()
        workdir.mkdir(parents=True, exist_ok=True)
    print(f"ingestion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}", flush=True)
    print(f"load average at start: {_load()} (other work on the machine slows every reader)", flush=True)
    print(f"work dir: {workdir}", flush=True)
    try:
        # Generating and checking the data takes GBs: done in a child, so the parent stays small.
        extra = ["--workdir", str(workdir), "--events", str(args.events), "--noise", args.noise]
        run_child("prepare", None, capture=False, extra=extra + (["--keep"] if args.keep else []))
        manifest = json.loads((workdir / "manifest.json").read_text())
        _describe_dataset("data", manifest["full"])
        clean = manifest["full"].get("clean")
        if clean:
            print(
                f"  pyarrow-readable copy: {clean['objects']} objects, {clean['lines']:,} lines "
                f"({clean['dropped_lines']:,} lines, {clean['dropped_objects']} objects dropped)"
            )
        _describe_dataset("window", manifest["window"])
        _describe_dataset("small", manifest["small"])
        if args.profile:
            spec = manifest["window"]
            path = _write_spec(workdir, "profile", spec, spec["files"], spec["root"], args.pyarrow_threads)
            print(flush=True)
            run_child("profile", path, capture=False)
        else:
            all_ran = benchmark(workdir, manifest, args)
    finally:
        if args.keep:
            print(f"data kept in {workdir}")
        else:
            _cleanup(workdir, created)
    print(f"load average at end: {_load()}; wall time {time.perf_counter() - began:.0f} s")
    if not all_ran:
        sys.exit(1)


if __name__ == "__main__":
    main()

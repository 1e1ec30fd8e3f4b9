"""Dagster's default run launcher, with a worker health check for run monitoring.

`DefaultRunLauncher` starts each run in a worker process of the code server (`dagster dev`'s, or
`dagster code-server start`), but cannot tell the run-monitoring daemon whether that worker still
lives. While the code server lives, it fails a run whose worker died itself (within a second);
when the code server went too (`dagster dev` killed, the machine rebooted), nothing is left to
notice, and the run stays STARTED, holding its site's pool, until `max_runtime_seconds` (1.5 h).

`LocalWorkerRunLauncher` launches exactly as `DefaultRunLauncher` and answers the daemon's health
check (every `poll_interval_seconds`) from the worker's process:

- The worker writes "Started process for run (pid: N)." with a `pid` metadata entry before it
  reports the run STARTED (dagster/_grpc/impl.py, and `dagster api execute_run`).
- Where the run's code server was reached on a loopback address or a unix socket, it and its
  workers run on the daemon's host (the daemon launched the run), so the pid is looked up here:
  alive, the run is RUNNING; gone (no such process, a zombie, or a process that started after the
  worker reported itself, i.e. a reused pid): FAILED, unless the code server says it still runs
  the run (a local address into another pid namespace, e.g. containers sharing a network). The
  pid decides, not the code server's list of runs: `dagster code-server start` (what `dagster dev`
  and the image run) does not implement `GetCurrentRuns`, and after "Reload definitions" a new
  server answers at the same address while the old one keeps running the in-flight runs.
- Anywhere else (a code server on another host or container, no pid recorded) the run's
  heartbeat decides (run_heartbeat.py: the worker tags the run every 30 s): none for five minutes,
  FAILED. A run without any heartbeat is RUNNING, and `max_runtime_seconds` stays the bound. Not
  UNKNOWN: the daemon fails a run on any answer but RUNNING and SUCCESS, so "unknown" would fail
  healthy runs.

A worker whose pid cannot be told from a later process (no /proc, e.g. macOS) counts as alive
while a process of that pid exists: at worst the run waits for `max_runtime_seconds`, as before.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

from article_rec_assets.run_heartbeat import STALE_AFTER_SECONDS, heartbeat_age

# The message the run worker writes with its pid, as it starts (dagster/_grpc/impl.py).
WORKER_STARTED_PREFIX = "Started process for run"
# A process of the worker's pid that started more than this after the worker reported itself is
# another process (the pid was reused). Wide, so that a wall-clock correction while a run goes
# does not make a live worker look replaced; a narrower margin would only catch reuse sooner.
PID_REUSE_MARGIN_SECONDS = 60.0
# How long the health check waits for the code server's answer: a local server that is gone
# refuses at once; one that hangs must not stall the monitoring of the other runs.
CODE_SERVER_TIMEOUT_SECONDS = 10
# Engine events read per query while looking for the worker's pid (it is among the first).
_EVENTS_PAGE = 100


@dataclass(frozen=True)
class Worker:
    """A run's worker process, as it reported itself."""

    pid: int
    reported_at: float  # the event's timestamp (seconds since the epoch)


class LocalWorkerRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run monitoring fails a run once its worker process is gone.

    Decides by the worker's pid on this host (code server on a loopback address or unix socket),
    else by the run's heartbeat; without either it answers RUNNING and leaves the run to
    `max_runtime_seconds`.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = self.worker(run)
        if worker is None:
            return by_heartbeat(run, "no worker pid recorded for the run")
        server = code_server_address(run)
        if server is None:
            return by_heartbeat(
                run, "the run was not launched through a code server (no dagster/grpc_info tag)"
            )
        if not is_local_address(server):
            return by_heartbeat(
                run,
                f"the run's worker (pid {worker.pid}) runs beside a code server on another host "
                f"({describe(server)}), whose processes this host cannot see",
            )
        if process_is_worker(worker):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run's worker (pid {worker.pid}) is alive")
        if self.code_server_runs(run):
            # Its pid is not visible from here (another pid namespace behind a local address):
            # the code server's word is enough to keep it.
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                f"pid {worker.pid} is not alive here, but the run's code server is running the run",
            )
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's worker (pid {worker.pid}) is gone and no code server is running it "
            f"(code server {describe(server)})",
        )

    def worker(self, run: DagsterRun) -> Worker | None:
        """The worker's pid from its "Started process for run" event. A run has one worker: the
        default launcher cannot resume a run in a new one."""
        cursor: str | None = None
        while True:
            page = self._instance.event_log_storage.get_records_for_run(
                run.run_id,
                cursor=cursor,
                of_type=DagsterEventType.ENGINE_EVENT,
                limit=_EVENTS_PAGE,
                ascending=True,
            )
            for record in page.records:
                entry = record.event_log_entry
                event = entry.dagster_event
                if event is None or not (event.message or "").startswith(WORKER_STARTED_PREFIX):
                    continue
                pid = event.engine_event_data.metadata.get("pid")
                if pid is not None and str(pid.value).isdigit():
                    return Worker(int(str(pid.value)), entry.timestamp)
            if not page.has_more:
                return None
            cursor = page.cursor

    def code_server_runs(self, run: DagsterRun) -> bool:
        """Whether the code server at the run's address says it is running the run. Any error (the
        server gone, busy, an older Dagster) is "no": this only ever keeps a run."""
        from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
        from dagster._serdes import deserialize_value

        try:
            client = self._get_grpc_client_for_termination(run.run_id)
            if client is None:
                return False
            answer = client.can_cancel_execution(
                CanCancelExecutionRequest(run_id=run.run_id), timeout=CODE_SERVER_TIMEOUT_SECONDS
            )
            return deserialize_value(answer, CanCancelExecutionResult).can_cancel
        except Exception:
            return False


def by_heartbeat(run: DagsterRun, why_not_the_pid: str) -> CheckRunHealthResult:
    """The worker's health from the run's heartbeat (run_heartbeat.py), where its pid cannot be
    looked up; a run without one (launched before heartbeats, or not yet beating) is left to
    `max_runtime_seconds`."""
    age = heartbeat_age(run)
    if age is None:
        return CheckRunHealthResult(
            WorkerStatus.RUNNING, f"{why_not_the_pid}, and no heartbeat: max_runtime_seconds applies"
        )
    if age > STALE_AFTER_SECONDS:
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's worker has not beaten for {age:.0f} s (more than {STALE_AFTER_SECONDS:.0f} s): "
            f"it is gone ({why_not_the_pid})",
        )
    return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run's worker beat {age:.0f} s ago")


def code_server_address(run: DagsterRun) -> dict | None:
    """Where the run was launched: the `dagster/grpc_info` tag the default launcher writes."""
    raw = run.tags.get(GRPC_INFO_TAG)
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def is_local_address(server: dict) -> bool:
    """A unix socket or a loopback host: the code server, and the workers it starts, are on the
    host of the process that reached it (so the daemon can see their pids)."""
    if server.get("socket"):
        return True
    host = str(server.get("host") or "")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(server: dict) -> str:
    if server.get("socket"):
        return f"socket {server['socket']}"
    return f"{server.get('host')}:{server.get('port')}"


def process_is_worker(worker: Worker) -> bool:
    """Whether the process `worker.pid` on this host is still that worker."""
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    state = _proc_state_and_start(worker.pid)
    if state is None:
        return True  # no /proc: a process of that pid exists, which is all that can be told
    status, started_at = state
    if status in ("Z", "X"):
        return False  # exited, not yet reaped by its parent
    return started_at <= worker.reported_at + PID_REUSE_MARGIN_SECONDS


def _proc_state_and_start(pid: int) -> tuple[str, float] | None:
    """The process's state letter and start time (seconds since the epoch), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields count from state.
    fields = stat[stat.rindex(")") + 2 :].split()
    try:
        started_ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
    except (IndexError, ValueError):
        return None
    return fields[0], boot + started_ticks / os.sysconf("SC_CLK_TCK")

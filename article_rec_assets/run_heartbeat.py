"""Each run's worker says it is alive: a run tag (`article_rec/heartbeat`, the time of its last
beat) written every half minute while the run executes.

Run monitoring reads it where it cannot see the worker's process (a code server in another
container or on another host, see `run_launcher`): a run whose heartbeat stopped for five minutes
lost its worker, and is failed then rather than after `max_runtime_seconds`. The beat comes from
a thread of the worker process, so it stops when the process dies, whatever killed it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from dagster import DagsterInstance, executor
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.storage.dagster_run import DagsterRun
from dagster._time import get_current_datetime, get_current_timestamp  # run monitoring's clock

HEARTBEAT_TAG = "article_rec/heartbeat"
HEARTBEAT_SECONDS = 30.0
# Ten beats missed: the worker is gone (a step holding the interpreter for minutes, or clocks
# that disagree by minutes, would be needed to miss them while alive).
STALE_AFTER_SECONDS = 300.0


class RunHeartbeat:
    """While entered, writes the run's heartbeat tag now and every `seconds`; a failed write (the
    storage busy a moment) is tried again at the next beat."""

    def __init__(self, instance: DagsterInstance, run_id: str, seconds: float = HEARTBEAT_SECONDS) -> None:
        self.instance = instance
        self.run_id = run_id
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)

    def __enter__(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds)

    def _beat(self) -> None:
        while True:
            try:
                stamp = get_current_datetime().isoformat(timespec="seconds")
                self.instance.add_run_tags(self.run_id, {HEARTBEAT_TAG: stamp})
            except Exception:  # a missed beat is tried again; the run must go on
                pass
            if self._stop.wait(self.seconds):
                return


def last_heartbeat(run: DagsterRun) -> float | None:
    """The time of the run's last heartbeat (seconds since the epoch), or None."""
    value = run.tags.get(HEARTBEAT_TAG)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def heartbeat_age(run: DagsterRun) -> float | None:
    """Seconds since the run's last heartbeat, or None."""
    beat = last_heartbeat(run)
    return None if beat is None else get_current_timestamp() - beat


class HeartbeatInProcessExecutor(InProcessExecutor):
    """Dagster's in-process executor, with the run's heartbeat beating while its steps run."""

    def execute(self, plan_context, execution_plan):
        with RunHeartbeat(plan_context.instance, plan_context.run_id):
            yield from super().execute(plan_context, execution_plan)


@executor(name="in_process", config_schema=IN_PROC_CONFIG)
def in_process_executor_with_heartbeat(init_context) -> HeartbeatInProcessExecutor:
    """Every step of a run in the run's own process (a site's graph is a chain), and a heartbeat."""
    config = init_context.executor_config
    return HeartbeatInProcessExecutor(
        retries=RetryMode.from_config(config["retries"]),
        step_dependency_config=StepDependencyConfig.from_config(config.get("step_dependency_config")),
    )

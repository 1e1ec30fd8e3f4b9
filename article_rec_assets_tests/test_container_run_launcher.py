"""The container launcher's own logic, without containers: which site a run is of, what its
container may use, and the reason a run is failed with when its container stopped early
(test_container_runs.py launches real containers)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey
from dagster._core.storage.dagster_run import DagsterRun

from article_rec_assets.container_run_launcher import (
    CPUS_TAG,
    MEMORY_TAG,
    RunLimits,
    run_limits,
    site_of_run,
    why_the_container_stopped,
)
from article_rec_assets.partitions import SITES
from article_rec_assets.run_container import (
    VERDICT_PREFIX,
    MemoryVerdict,
    find_verdict,
    read_cgroup_memory,
    verdict_line,
)

SITE = "demo-tribune"


def a_run(job_name: str = "__ASSET_JOB", keys: tuple[str, ...] = (), tags: dict | None = None) -> DagsterRun:
    selection = frozenset(AssetKey(key.split("/")) for key in keys) or None
    return DagsterRun(job_name=job_name, asset_selection=selection, tags=tags or {})


def test_a_runs_site_is_the_prefix_of_its_assets_or_of_its_job() -> None:
    assert site_of_run(a_run(keys=("demo_tribune/raw_events", "demo_tribune/trained_model"))) == SITE
    assert site_of_run(a_run("demo_city_paper__recommendations_job")) == "demo-city-paper"
    # A backfill's range run selects assets under its job `__ASSET_JOB`.
    assert site_of_run(a_run(keys=("demo_city_paper/raw_events",))) == "demo-city-paper"
    assert site_of_run(a_run(keys=("demo_tribune/raw_events", "demo_city_paper/raw_events"))) is None
    assert site_of_run(a_run("some_other_job")) is None


def test_a_runs_limits_are_its_sites_unless_its_tags_say_otherwise() -> None:
    site = SITES[SITE].run_resources
    limits = run_limits(a_run(keys=("demo_tribune/raw_events",)))
    assert (limits.site, limits.memory, limits.cpus) == (SITE, site.memory, site.cpus)
    assert limits.source == f"site {SITE}'s run_resources"
    assert limits.container_kwargs == {
        "mem_limit": site.memory_in_bytes,
        "memswap_limit": site.memory_in_bytes,  # no swap on top of the limit
        "nano_cpus": int(site.cpus * 1e9),
    }
    tagged = run_limits(a_run("demo_tribune__recommendations_job", tags={MEMORY_TAG: "6g"}))
    assert (tagged.memory, tagged.cpus, tagged.source) == ("6g", site.cpus, "the run's tags")
    assert run_limits(a_run("some_other_job")).source == "the defaults"
    with pytest.raises(ValueError, match="run_memory"):
        run_limits(a_run("demo_tribune__recommendations_job", tags={MEMORY_TAG: "a lot"}))
    with pytest.raises(ValueError, match="run_cpus"):
        run_limits(a_run("demo_tribune__recommendations_job", tags={CPUS_TAG: "-2"}))


LIMITS = RunLimits(SITE, "2g", 1.0, f"site {SITE}'s run_resources")


def test_a_run_killed_at_its_memory_limit_is_failed_with_the_limit_and_the_way_out() -> None:
    verdict = MemoryVerdict(exit_code=137, oom_kills=1, limit_bytes=2 * 2**30, peak_bytes=2 * 2**30)
    # podman on cgroup v1: no OOMKilled, the verdict of run_container.py says it.
    message = why_the_container_stopped({"ExitCode": 137, "OOMKilled": False}, verdict, LIMITS, "")
    assert "ran out of memory" in message and "limit of 2g" in message and "peak 2,048 MiB" in message
    assert f"{SITE}'s `run_resources.memory`" in message and MEMORY_TAG in message
    assert "recommendations are those of its last successful run" in message
    # Docker: its own flag is enough.
    assert "ran out of memory" in why_the_container_stopped(
        {"ExitCode": 137, "OOMKilled": True}, None, LIMITS, ""
    )


def test_a_container_killed_from_outside_or_exiting_early_is_told_apart() -> None:
    killed = why_the_container_stopped({"ExitCode": 137, "OOMKilled": False}, None, LIMITS, "")
    assert "from outside" in killed and "ran out of memory" not in killed
    # The run finished its command without an OOM kill but the run did not end: say what it wrote.
    verdict = MemoryVerdict(exit_code=1, oom_kills=0, limit_bytes=None, peak_bytes=None)
    log = "\n".join(f"line {i}" for i in range(40)) + "\nImportError: no module named x"
    exited = why_the_container_stopped({"ExitCode": 1, "Status": "exited"}, verdict, LIMITS, log)
    assert "exit code 1" in exited and "ImportError: no module named x" in exited
    assert "line 10" not in exited  # only the last lines


def test_the_verdict_line_round_trips_and_a_log_without_one_has_none() -> None:
    verdict = MemoryVerdict(137, 2, 300 * 2**20, 299 * 2**20)
    log = f"some output\n{verdict_line(verdict)}\n"
    assert find_verdict(log) == verdict
    assert find_verdict("Killed\n") is None
    assert find_verdict(f"{VERDICT_PREFIX} not json") is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_cgroups_oom_kills_limit_and_peak_are_read_on_either_cgroup_version(
    version: str, tmp_path: Path
) -> None:
    if version == "v2":
        (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
        (tmp_path / "memory.max").write_text("314572800\n")
        (tmp_path / "memory.peak").write_text("314570000\n")
    else:
        folder = tmp_path / "memory"
        folder.mkdir()
        (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        (folder / "memory.limit_in_bytes").write_text("314572800\n")
        (folder / "memory.max_usage_in_bytes").write_text("314570000\n")
    assert read_cgroup_memory(tmp_path) == (1, 314572800, 314570000)
    assert read_cgroup_memory(tmp_path / "absent") == (0, None, None)


def test_the_containers_command_passes_the_runs_exit_on_and_says_how_its_memory_ended() -> None:
    wrapped = [sys.executable, "-m", "article_rec_assets.run_container"]
    done = subprocess.run(
        [*wrapped, sys.executable, "-c", "raise SystemExit(3)"], capture_output=True, text=True
    )
    assert done.returncode == 3
    verdict = find_verdict(done.stderr)
    assert verdict is not None and verdict.exit_code == 3
    killed = subprocess.run(
        [*wrapped, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 128 + signal.SIGKILL
    assert json.loads(killed.stderr.strip().split(VERDICT_PREFIX)[-1])["exit_code"] == 137

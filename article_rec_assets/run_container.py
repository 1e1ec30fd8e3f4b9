"""What a run's container runs: Dagster's run command as a child process, then one line on stderr
with how its memory ended (the kernel's OOM kills in the container, its limit and peak).

The run launcher (container_run_launcher.py) reads that line to fail the run with its reason.
Docker records a container its memory limit killed (`State.OOMKilled`), but not every engine does
(podman on cgroup v1 reports the exit code 137 only, the same as `podman kill`), and the killed
process cannot tell. This parent stays small (it imports nothing of Dagster or pandas), so the
kernel's OOM killer picks the run, not it; after the child ends it reads its cgroup's count of OOM
kills and its peak memory.

    python -m article_rec_assets.run_container dagster api execute_run '{...}'
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# The stderr line the launcher looks for, followed by a JSON object (`MemoryVerdict`).
VERDICT_PREFIX = "article-rec-run-container:"
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MemoryVerdict:
    """How the container's memory ended: OOM kills in its cgroup, its limit and peak (bytes; None
    where the cgroup does not say)."""

    exit_code: int
    oom_kills: int
    limit_bytes: int | None
    peak_bytes: int | None


def read_cgroup_memory(root: Path = CGROUP_ROOT) -> tuple[int, int | None, int | None]:
    """(OOM kills, limit, peak) of the cgroup the process is in, cgroup v2 or v1; zeros and Nones
    where the files are missing (not in a container, or a kernel without them)."""
    if (root / "memory.events").exists():  # v2: the container's own cgroup is the root
        events, limit, peak = root / "memory.events", root / "memory.max", root / "memory.peak"
    else:  # v1: the memory controller's own folder
        folder = root / "memory"
        events = folder / "memory.oom_control"
        limit, peak = folder / "memory.limit_in_bytes", folder / "memory.max_usage_in_bytes"
    return _counter(events, "oom_kill"), _number(limit), _number(peak)


def _counter(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    # "max" (v2) and a huge number (v1) both mean no limit.
    return int(text) if text.isdigit() and int(text) < 2**60 else None


def verdict_line(verdict: MemoryVerdict) -> str:
    return f"{VERDICT_PREFIX} {json.dumps(asdict(verdict))}"


def find_verdict(log_text: str) -> MemoryVerdict | None:
    """The verdict in a container's log (None: the container ended before its run did, e.g. killed
    from outside)."""
    for line in reversed(log_text.splitlines()):
        if line.startswith(VERDICT_PREFIX):
            try:
                return MemoryVerdict(**json.loads(line[len(VERDICT_PREFIX) :]))
            except (TypeError, ValueError):
                return None
    return None


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m article_rec_assets.run_container COMMAND [ARGS...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv)
    # `docker stop` signals this process (the container's first): pass it on, so the run is
    # stopped as Dagster stops a run, not killed with its parent.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: child.send_signal(received))
    returned = child.wait()
    exit_code = 128 - returned if returned < 0 else returned
    oom_kills, limit, peak = read_cgroup_memory()
    print(verdict_line(MemoryVerdict(exit_code, oom_kills, limit, peak)), file=sys.stderr, flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

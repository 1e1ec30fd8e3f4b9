"""Every run in its own container (dagster-docker's `DockerRunLauncher`), sized by its site.

What this adds to `DockerRunLauncher` (deploy/docker/dagster.yaml configures it):

- **Limits from the site's settings.** A run's memory and CPU limits are its site's
  `run_resources` (the site whose assets the run materializes: a scheduled tick, a UI launch and a
  backfill's runs alike), or the run's tags `article_rec/run_memory` and `article_rec/run_cpus`
  where an operator set them for one run. Swap is not allowed beyond the memory limit, so a run
  that needs more is killed, not slowed to a crawl. The run's log says what it got.
- **A reason when the container dies.** The run's command goes through `run_container.py`, which
  says on stderr when the kernel killed the run at its memory limit. Run monitoring (its next
  poll) then fails the run with that reason and the way out, or, for a container killed from
  outside (`docker kill`, a host restart) or a run that exited early, with what the container's
  state and last log lines say. Publishing is one transaction, so a failed run leaves the site's
  published recommendations as they were.
- **Names that say whose run it is**: `<prefix>-<site key prefix>-<run id>`, labelled with the site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors
from dagster import Field, StringSource
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

from article_rec_assets.partitions import SITES, site_of_keys, site_of_prefix, site_prefix
from article_rec_assets.run_container import MemoryVerdict, find_verdict
from article_rec_assets.settings.sites import RunResources, memory_bytes

MEMORY_TAG = "article_rec/run_memory"
CPUS_TAG = "article_rec/run_cpus"
SITE_LABEL = "article_rec/site"
# The run's command, through the parent that reports an OOM kill (run_container.py).
WRAPPER = ["python", "-m", "article_rec_assets.run_container"]
# Log lines quoted in the failure of a container that exited before its run finished.
LOG_LINES_QUOTED = 15


@dataclass(frozen=True)
class RunLimits:
    """A run's container limits and where they came from."""

    site: str | None
    memory: str
    cpus: float
    source: str  # "site demo-tribune's run_resources", "the run's tags", "the defaults"

    @property
    def container_kwargs(self) -> dict[str, Any]:
        memory = memory_bytes(self.memory)
        # memswap_limit equal to the memory: no swap on top of it.
        return {"mem_limit": memory, "memswap_limit": memory, "nano_cpus": int(self.cpus * 1e9)}


def site_of_run(run: DagsterRun) -> str | None:
    """The site whose assets the run materializes (its asset keys' prefix, else its job name's,
    `<site>__<job>`); None for a run of no single site."""
    if run.asset_selection:
        return site_of_keys(run.asset_selection)
    return site_of_prefix(run.job_name.split("__", 1)[0]) if "__" in run.job_name else None


def run_limits(run: DagsterRun, sites: Mapping[str, Any] = SITES) -> RunLimits:
    """The limits of `run`'s container: the run's tags over its site's `run_resources`. A tag
    that is not a size or a number raises ValueError, which fails the launch with it."""
    site = site_of_run(run)
    resources: RunResources = sites[site].run_resources if site in sites else RunResources()
    source = f"site {site}'s run_resources" if site in sites else "the defaults"
    memory, cpus = resources.memory, resources.cpus
    if MEMORY_TAG in run.tags or CPUS_TAG in run.tags:
        memory, cpus = run.tags.get(MEMORY_TAG, memory), run.tags.get(CPUS_TAG, cpus)
        source = "the run's tags"
    try:
        # The settings' own checks, applied to a tag's value too.
        checked = RunResources(memory=str(memory), cpus=float(cpus))
    except ValueError as exc:
        raise ValueError(f"run {run.run_id}: {MEMORY_TAG} / {CPUS_TAG}: {exc}") from exc
    return RunLimits(site, checked.memory, checked.cpus, source)


def why_the_container_stopped(
    state: Mapping[str, Any], verdict: MemoryVerdict | None, limits: RunLimits, log_tail: str
) -> str:
    """The failure message of a run whose container stopped before the run finished."""
    exit_code = state.get("ExitCode")
    if state.get("OOMKilled") or (verdict is not None and verdict.oom_kills):
        peak = f", peak {verdict.peak_bytes / 2**20:,.0f} MiB" if verdict and verdict.peak_bytes else ""
        where = (
            f"{limits.site}'s `run_resources.memory` in its settings" if limits.site else "the run's memory"
        )
        return (
            f"The run ran out of memory: the kernel killed it at its container's limit of "
            f"{limits.memory} ({limits.source}{peak}). Raise {where}, or launch it again with the "
            f"tag {MEMORY_TAG}=<size> for this run only. Nothing was published by this run: the "
            f"site's recommendations are those of its last successful run."
        )
    if exit_code == 137:
        return (
            "The run's container was killed (SIGKILL, exit code 137) from outside, not at its memory "
            "limit: `docker kill` / `podman kill`, the engine or host restarting, or the host "
            "running out of memory. Nothing was published by this run; launch it again."
        )
    status = state.get("Status", "unknown")
    quoted = "\n".join(log_tail.strip().splitlines()[-LOG_LINES_QUOTED:])
    return f"The run's container stopped ({status}, exit code {exit_code}) before the run finished." + (
        f" Its last log lines:\n{quoted}" if quoted else ""
    )


class SiteContainerRunLauncher(DockerRunLauncher):
    """`DockerRunLauncher` with per-site container limits and failures that say why."""

    def __init__(self, inst_data=None, container_name_prefix: str = "article-rec", **config) -> None:
        self.container_name_prefix = container_name_prefix
        super().__init__(inst_data=inst_data, **config)

    @classmethod
    def config_type(cls) -> dict:
        return {
            **DOCKER_CONFIG_SCHEMA,
            "container_name_prefix": Field(
                StringSource,
                is_required=False,
                default_value="article-rec",
                description="Each run's container is named <prefix>-<site>-<run id>.",
            ),
        }

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        limits = run_limits(dagster_run)
        site = site_prefix(limits.site) if limits.site else "run"
        labels = dict(context.container_kwargs.get("labels") or {})
        labels[SITE_LABEL] = limits.site or ""
        return context.merge(
            DockerContainerContext(
                container_kwargs={
                    **limits.container_kwargs,
                    "name": f"{self.container_name_prefix}-{site}-{dagster_run.run_id}",
                    "labels": labels,
                }
            )
        )

    # Both launch_run and resume_run start their container here.
    def _launch_container_with_command(self, run, docker_image, command) -> None:
        limits = run_limits(run)
        self._instance.report_engine_event(
            message=(
                f"The run's container may use {limits.memory} of memory and {limits.cpus:g} CPU "
                f"({limits.source})."
            ),
            dagster_run=run,
            cls=self.__class__,
        )
        super()._launch_container_with_command(run, docker_image, [*WRAPPER, *command])

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        result = super().check_run_worker_health(run)
        if result.status != WorkerStatus.FAILED:
            return result
        container = self._get_container(run)
        if container is None:
            return result
        try:
            log_tail = container.logs(stdout=True, stderr=True, tail=100).decode("utf-8", "replace")
        except docker.errors.APIError:
            log_tail = ""
        state = container.attrs.get("State") or {}
        message = why_the_container_stopped(state, find_verdict(log_tail), run_limits(run), log_tail)
        return CheckRunHealthResult(WorkerStatus.FAILED, msg=message)

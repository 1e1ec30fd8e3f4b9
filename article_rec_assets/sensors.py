"""Sensors that tell someone: a failed run, or a failed check on a window, becomes a short JSON
message to the webhook in ARTICLE_REC_ALERT_WEBHOOK_URL (Slack, Teams, an incident tool...);
with none set, the message goes to the sensor's log.

Message: {"site", "window", "asset", "check", "severity", "reason", "run_id", "url"}.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from article_rec_assets.partitions import SITES, site_of_prefix, site_pool
from article_rec_assets.settings import environment

WEBHOOK_TIMEOUT_SECONDS = 10
MAX_REASON_CHARS = 500
MAX_ALERTS_PER_CHECK = 100  # per check and tick; a tick every minute keeps up with any real rate


def alert_message(
    *,
    site: str | None,
    window: str | None,
    asset: str | None,
    check: str | None,
    severity: str,
    reason: str,
    run_id: str,
    ui_url: str,
) -> dict[str, Any]:
    """The message for one failure (`window`: a window's key, or a range `first..last`)."""
    return {
        "site": site,
        "window": window,
        "asset": asset,
        "check": check,
        "severity": severity,
        "reason": reason[:MAX_REASON_CHARS],
        "run_id": run_id,
        "url": f"{ui_url.rstrip('/')}/runs/{run_id}",
    }


def send_alert(message: dict[str, Any], log) -> None:
    """POST the message to the webhook, or log it when none is configured. A webhook that does
    not answer 2xx raises: the sensor's tick fails and the same failures are sent again next tick."""
    url = environment.alert_webhook_url()
    if not url:
        log.warning(f"alert (no {environment.ALERT_WEBHOOK_URL_VAR} set): {json.dumps(message)}")
        return
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"alert webhook answered {response.status}")


@run_failure_sensor(
    name="alert_on_run_failure",
    default_status=DefaultSensorStatus.RUNNING,
    description="A failed run of any job: site, window, the failed step and why, with a link to the run.",
)
def alert_on_run_failure(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    # A step is named `<site prefix>__<asset>` (the ingestion's `<site prefix>__ingest_window`).
    step_keys = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    failed_steps = [key.split("__", 1)[-1] for key in step_keys]
    sites = {site_of_prefix(key.split("__", 1)[0]) for key in step_keys} - {None}
    reason = context.failure_event.message or "run failed"
    step_errors = [
        _root_cause(e.event_specific_data.error)
        for e in context.get_step_failure_events()
        if e.event_specific_data is not None and getattr(e.event_specific_data, "error", None)
    ]
    if step_errors:
        reason = step_errors[0]
    send_alert(
        alert_message(
            site=run.tags.get("site")
            or _site_of_assets(run.asset_selection or ())
            or (next(iter(sites)) if len(sites) == 1 else None),
            window=run.tags.get("dagster/partition") or _range(run.tags),
            asset=", ".join(failed_steps) or None,
            check=None,
            severity="ERROR",
            reason=reason,
            run_id=run.run_id,
            ui_url=environment.ui_url(),
        ),
        context.log,
    )


def _root_cause(error) -> str:
    """The user's own exception, not Dagster's wrapper around it ("Error occurred while ...")."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


def _site_of_assets(keys) -> str | None:
    """The site whose assets a run materialized (their key prefix)."""
    sites = {site_of_prefix(key.path[0]) for key in keys if len(key.path) > 1}
    return next(iter(sites)) if len(sites) == 1 else None


def _range(tags: dict[str, str]) -> str | None:
    start, end = (
        tags.get("dagster/asset_partition_range_start"),
        tags.get("dagster/asset_partition_range_end"),
    )
    return f"{start}..{end}" if start and end else None


@sensor(
    name="alert_on_check_failure",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Every failed asset check (blocking or a warning), per window, since the last tick.",
)
def alert_on_check_failure(context: SensorEvaluationContext):
    # Cursor: per check, the newest failed execution already reported (record ids only grow).
    first_tick = context.cursor is None
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    storage = context.instance.event_log_storage
    failures = []
    for check_key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
        records = storage.get_asset_check_execution_history(
            check_key, limit=MAX_ALERTS_PER_CHECK, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        last = seen.get(check_key.to_user_string(), 0)
        failures += [(check_key, r) for r in records if r.id > last]
        if records:
            seen[check_key.to_user_string()] = max(last, *(r.id for r in records))
    if first_tick:
        # Start from now: earlier failures are in the UI already.
        context.update_cursor(json.dumps(seen))
        return SkipReason("watching check results from now on")
    for check_key, record in sorted(failures, key=lambda item: item[1].id):
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        metadata = evaluation.metadata if evaluation is not None else {}
        window = record.partition or (metadata["window"].value if "window" in metadata else None)
        send_alert(
            alert_message(
                site=site_of_prefix(check_key.asset_key.path[0]),
                window=window,
                asset=check_key.asset_key.path[-1],
                check=check_key.name,
                severity=evaluation.severity.value if evaluation is not None else "ERROR",
                reason=(evaluation.description if evaluation is not None else None) or "check failed",
                run_id=record.run_id,
                ui_url=environment.ui_url(),
            ),
            context.log,
        )
    # Only after every message went out: a webhook that fails makes the next tick send them again.
    context.update_cursor(json.dumps(seen))
    return SkipReason(f"{len(failures)} failed checks reported" if failures else "no new failed checks")


@sensor(
    name="site_pools",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Gives each site's concurrency pool the instance's default limit (one run per site) "
    "as soon as the site's assets load, before its first runs are queued.",
)
def site_pools(context: SensorEvaluationContext):
    # The queue daemon creates a pool's limit on the pass that first sees a queued run in it, and
    # reads the limited pools before doing so: on that first pass, two queued runs of a new site
    # would both start. A site's pool is limited here first.
    created = ensure_site_pools(context.instance)
    return SkipReason(
        f"limited the pools of {', '.join(created)}" if created else "every site's pool is limited"
    )


def ensure_site_pools(instance) -> list[str]:
    """The sites' pools that had no limit yet, now given the instance's default (none: no default)."""
    if not instance.global_op_concurrency_default_limit:
        return []
    storage = instance.event_log_storage
    existing = storage.get_concurrency_keys()
    created = []
    for site in SITES:
        pool = site_pool(site)
        if pool not in existing and storage.initialize_concurrency_limit_to_default(pool):
            created.append(pool)
    return created

"""Sensors that tell someone, in as few messages as tell the whole story (see
`alerting.incidents`): a window whose blocking check failed is one incident message; warnings
are one message per site and tick; a run that failed on its own (an exception, a killed worker)
is one message naming the asset and the exception. Each is posted as JSON to the webhook in
ARTICLE_REC_ALERT_WEBHOOK_URL (Slack, Teams, an incident tool...); with none set, the message
goes to the sensor's log.

Message: {"site", "window", "asset", "check", "severity", "reason", "run_id", "url", "also",
"warnings"}.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    WILL_RETRY_TAG,
)

from article_rec_assets.alerting.incidents import (
    ERROR,
    CheckFailure,
    check_messages,
    error_line,
    message,
    run_url,
)
from article_rec_assets.assets import WINDOW_TAG
from article_rec_assets.partitions import SITES, site_of_keys, site_of_prefix, site_pool, site_prefix
from article_rec_assets.settings import environment

WEBHOOK_TIMEOUT_SECONDS = 10
MAX_FAILURES_PER_CHECK = 100  # read per check and tick; a tick every minute keeps up with any real rate
# A step that failed because a blocking check failed (the check's own message says why).
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"
# Metadata of a check result recorded for a check that did not run (see `record_checks_not_run`).
NOT_RUN = "not_run"


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
    description="A run that failed on its own (an exception, a killed worker): site, window, the "
    "asset and the exception's last line, with a link to the run. A run stopped by a blocking "
    "check sends nothing here: the check's incident says it.",
)
def alert_on_run_failure(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return  # the retry's outcome is the news
    failure = run_failure(
        context.instance, run, context.get_step_failure_events(), context.failure_event.message
    )
    if failure is None:
        return
    assets, reason = failure
    send_alert(
        message(
            site=run.tags.get("site") or site_of_keys(run.asset_selection or assets),
            window=_run_windows(run.tags),
            asset=", ".join(key.path[-1] for key in assets) or None,
            check=None,
            severity=ERROR,
            reason=reason,
            run_id=run.run_id,
            url=run_url(environment.ui_url(), run.run_id),
        ),
        context.log,
    )


def run_failure(
    instance: DagsterInstance, run: DagsterRun, step_failures, run_failure_message: str | None
) -> tuple[list, str] | None:
    """(the failed steps' assets, the exception's last line) of a run that failed on its own;
    None when every failed step was stopped by a blocking check."""
    own = [
        event
        for event in step_failures
        if not (_error(event) is not None and _error(event).cls_name == CHECK_FAILED_ERROR)
    ]
    if step_failures and not own:
        return None
    step_assets = _step_assets(instance, run) if own else {}
    assets = [key for event in own for key in step_assets.get(event.step_key, [])]
    if own and _error(own[0]) is not None:
        error = _root_cause(_error(own[0]))
        return assets, error_line(error.cls_name, error.message)
    # No step failed: the run itself did (a killed worker, a timeout, a launch error).
    return assets, error_line(None, run_failure_message or "")


def _error(step_failure_event):
    data = step_failure_event.event_specific_data
    return getattr(data, "error", None) if data is not None else None


def _root_cause(error):
    """The user's own exception, not Dagster's wrapper around it ("Error occurred while ...")."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error


def _step_assets(instance: DagsterInstance, run: DagsterRun) -> dict[str, list]:
    """Each step's assets, from the run's plan: the checked ones of a step that makes several
    (the ingestion's step makes four; its checks are on raw_events, the one people know)."""
    if run.execution_plan_snapshot_id is None:
        return {}
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    assets: dict[str, list] = {}
    for step in snapshot.steps:
        made = [o.properties.asset_key for o in step.outputs if o.properties and o.properties.is_asset]
        checked = [
            o.properties.asset_check_key.asset_key
            for o in step.outputs
            if o.properties and o.properties.asset_check_key is not None
        ]
        assets[step.key] = list(dict.fromkeys(checked)) if len(made) > 1 and checked else made
    return assets


def _run_windows(tags: dict[str, str]) -> str | None:
    """The run's window, its range `first..last`, or the window its tag names."""
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return f"{start}..{end}" if start != end else start
    return tags.get(PARTITION_NAME_TAG) or tags.get(WINDOW_TAG)


@run_failure_sensor(
    name="record_checks_not_run",
    default_status=DefaultSensorStatus.RUNNING,
    description="The checks a failed run planned and never ran (their asset was skipped after an "
    "earlier step failed) get a result that says so, with their window, instead of Dagster's "
    '"Execution failed".',
)
def record_checks_not_run(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    failure = run_failure(
        context.instance, run, context.get_step_failure_events(), context.failure_event.message
    )
    why = None  # stopped by a blocking check: named from the run's log
    if failure is not None:
        assets, reason = failure
        names = ", ".join(key.path[-1] for key in assets)
        why = f"{names or 'the run'} failed first ({reason})"
    recorded = record_not_run(context.instance, run, why)
    context.log.info(f"{recorded} planned check results recorded as not run")


def record_not_run(instance: DagsterInstance, run: DagsterRun, why: str | None) -> int:
    """Resolve each check the run planned but never evaluated to a WARN result "not run": in the
    run's own log, so the check's entry for that run (and window) says what happened. `why`
    None: the run's failed blocking checks are named."""
    logs = instance.all_logs(
        run.run_id,
        of_type={DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION},
    )
    planned: dict[tuple[AssetCheckKey, str | None], None] = {}
    evaluated: set[tuple[AssetCheckKey, str | None]] = set()
    blocked_by: list[str] = []
    for entry in logs:
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if data is None:
            continue
        key = AssetCheckKey(data.asset_key, data.check_name)
        if entry.dagster_event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            subset = data.partitions_subset
            for partition in subset.get_partition_keys() if subset is not None else [None]:
                planned[(key, partition)] = None
        else:
            evaluated.add((key, data.partition))
            if not data.passed and data.blocking and data.severity == AssetCheckSeverity.ERROR:
                blocked_by.append(f"{key.asset_key.path[-1]} {key.name} of {data.partition or 'the run'}")
    if why is None:
        why = f"blocking check {', '.join(blocked_by) or '(unknown)'} failed first"
    window = _run_windows(run.tags)
    missing = [item for item in planned if item not in evaluated]
    for check_key, partition in missing:
        evaluation = AssetCheckEvaluation(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=f"not run: {why}",
            metadata={"window": partition or window or "", NOT_RUN: True},
            partition=partition,
        )
        instance.report_dagster_event(
            DagsterEvent(
                event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION.value,
                job_name=run.job_name,
                event_specific_data=evaluation,
                message=f"{check_key.to_user_string()}: not run ({why})",
            ),
            run_id=run.run_id,
        )
    return len(missing)


@sensor(
    name="alert_on_check_failure",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Failed asset checks since the last tick: one message per window whose blocking "
    "check failed (an incident), one per site for the tick's warnings.",
)
def alert_on_check_failure(context: SensorEvaluationContext):
    # Cursor: per check, the newest failed execution already read (record ids only grow); and the
    # incidents and warnings already sent.
    first_tick = context.cursor is None
    cursor = json.loads(context.cursor) if context.cursor else {}
    if "seen" not in cursor:  # a cursor of the sensor's first form: only the record ids
        cursor = {"seen": cursor, "reported": {}}
    seen: dict[str, int] = cursor["seen"]
    storage = context.instance.event_log_storage
    failures: list[CheckFailure] = []
    for check_key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
        records = storage.get_asset_check_execution_history(
            check_key, limit=MAX_FAILURES_PER_CHECK, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        last = seen.get(check_key.to_user_string(), 0)
        failures += [f for r in records if r.id > last and (f := _check_failure(check_key, r)) is not None]
        if records:
            seen[check_key.to_user_string()] = max(last, *(r.id for r in records))
    if first_tick:
        # Start from now: earlier failures are in the UI already.
        context.update_cursor(json.dumps({"seen": seen, "reported": {}}))
        return SkipReason("watching check results from now on")
    messages, reported = check_messages(
        failures, cursor["reported"], environment.ui_url(), {site: site_prefix(site) for site in SITES}
    )
    for alert in messages:
        send_alert(alert, context.log)
    # Only after every message went out: a webhook that fails makes the next tick send them again.
    new_cursor = json.dumps({"seen": seen, "reported": reported})
    if new_cursor != context.cursor:  # a tick stores its cursor: only a changed one
        context.update_cursor(new_cursor)
    return SkipReason(
        f"{len(failures)} failed checks in {len(messages)} messages" if failures else "no new failed checks"
    )


def _check_failure(check_key: AssetCheckKey, record) -> CheckFailure | None:
    """A failed check record as the alerting sees it; None for a check recorded as not run (the
    failure before it is the news)."""
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    metadata = evaluation.metadata if evaluation is not None else {}
    if NOT_RUN in metadata:
        return None
    window = record.partition or (metadata["window"].value if "window" in metadata else None)
    return CheckFailure(
        site=site_of_prefix(check_key.asset_key.path[0]),
        window=window,
        asset=check_key.asset_key.path[-1],
        check=check_key.name,
        severity=evaluation.severity.value if evaluation is not None else ERROR,
        reason=(evaluation.description if evaluation is not None else None) or "check failed",
        run_id=record.run_id,
        record_id=record.id,
    )


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

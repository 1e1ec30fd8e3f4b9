"""The alert sensors post a short JSON message per failure to a webhook (a local HTTP server
here), and log it when no webhook is set."""

import gzip
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetSpec,
    DagsterEventType,
    DagsterRunStatus,
    Definitions,
    MaterializeResult,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
    materialize,
    multi_asset,
)
from dagster._core.storage.tags import WILL_RETRY_TAG
from dagster._core.test_utils import freeze_time
from dagster._daemon.sensor import execute_sensor_iteration

from article_rec_assets.assets import WINDOW_TAG
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.partitions import (
    SITES,
    site_key,
    site_pool,
    site_prefix,
    window_check,
    window_key,
    window_partitions,
)
from article_rec_assets.sensors import (
    alert_on_check_failure,
    alert_on_run_failure,
    record_checks_not_run,
    site_pools,
)
from article_rec_assets.settings import environment
from article_rec_assets_tests.support import DEMO_END
from article_rec_assets_tests.support.operating import LOG, operated_instance, postgres_or_sqlite_url

PARTITION = "2026-03-03-10:00"
SITE = "demo-tribune"
PARTITIONS = window_partitions("demo-tribune")


RAW_EVENTS = site_key("demo-tribune", "raw_events")
BACKTEST = site_key("demo-tribune", "recommendation_backtest")


@asset(
    partitions_def=PARTITIONS,
    check_specs=[
        window_check("malformed_share_below_warn_threshold", RAW_EVENTS, "test", PARTITIONS),
        window_check("malformed_share_below_block_threshold", RAW_EVENTS, "test", PARTITIONS, blocking=True),
        window_check("events_are_fresh", RAW_EVENTS, "test", PARTITIONS),
    ],
    key=RAW_EVENTS,
)
def bad_window(context: AssetExecutionContext):
    """A window of 23 % unusable lines: its warning and its blocking check fail."""
    yield MaterializeResult()
    share = "23.00% of the window's lines are unusable (2,300 of 10,000)"
    yield AssetCheckResult(
        check_name="malformed_share_below_warn_threshold",
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=f"{share} (warning above 5%)",
    )
    yield AssetCheckResult(
        check_name="malformed_share_below_block_threshold",
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=f"{share} (blocking above 20%)",
    )
    yield AssetCheckResult(check_name="events_are_fresh", passed=True)


@asset(
    deps=[RAW_EVENTS],
    key=BACKTEST,
    check_specs=[window_check("approved", BACKTEST, "test", None, blocking=True)],
)
def quiet_backtest(context: AssetExecutionContext):
    """A backtest of a quiet window: too few reading pairs to judge (a warning)."""
    yield MaterializeResult()
    yield AssetCheckResult(
        check_name="approved",
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description="not judged: 12 reading pairs, fewer than min_pairs 50",
        metadata={"window": context.run.tags.get(WINDOW_TAG, "")},
    )


@multi_asset(
    name=f"{site_prefix('demo-tribune')}__ingest_window",
    partitions_def=PARTITIONS,
    specs=[AssetSpec(site_key("demo-tribune", name)) for name in ("delivered_events", "raw_events")],
    check_specs=[window_check("events_are_fresh", RAW_EVENTS, "test", PARTITIONS)],
)
def crashing_ingestion(context: AssetExecutionContext):
    raise RuntimeError("EventBucketUnreadable: s3://events/demo-tribune answered AccessDenied\nsecond line")


DEFS = Definitions(assets=[bad_window, quiet_backtest])


def tick(instance, cursor: str | None, definitions: Definitions = DEFS) -> str | None:
    """One evaluation of the check alerts (as the daemon's tick does): its new cursor."""
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=definitions)
    alert_on_check_failure(context)
    return context.cursor


def run_failure_sensors(instance, result) -> None:
    """The two run-failure sensors, for the run `result` (as the daemon calls them)."""
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    for sensor_def in (alert_on_run_failure, record_checks_not_run):
        context = build_run_status_sensor_context(
            sensor_name=sensor_def.name, dagster_instance=instance, dagster_run=run, dagster_event=failure
        ).for_run_failure()
        sensor_def(context)


def test_a_bad_window_is_one_message_whatever_failed_with_it(webhook: list[dict]) -> None:
    """Warning and blocking check failed, the run failed because of it, the backtest downstream
    never ran: one incident message, naming the blocking check and giving its own description."""
    with instance_for_test() as instance:
        cursor = tick(instance, None)  # first tick: starts watching from here
        result = materialize(
            [bad_window, quiet_backtest], partition_key=PARTITION, instance=instance, raise_on_error=False
        )
        assert not result.success  # stopped by the blocking check
        run_failure_sensors(instance, result)
        cursor = tick(instance, cursor)
        assert webhook == [
            {
                "site": "demo-tribune",
                "window": PARTITION,
                "asset": "raw_events",
                "check": "malformed_share_below_block_threshold",
                "severity": "ERROR",
                "reason": "23.00% of the window's lines are unusable (2,300 of 10,000) (blocking above 20%)",
                "run_id": result.run_id,
                "url": f"http://dagster.example:3000/runs/{result.run_id}",
                "also": [
                    {
                        "window": PARTITION,
                        "asset": "raw_events",
                        "check": "malformed_share_below_warn_threshold",
                        "severity": "WARN",
                        "reason": "23.00% of the window's lines are unusable (2,300 of 10,000) "
                        "(warning above 5%)",
                        "run_id": result.run_id,
                    }
                ],
                "warnings": [],
            }
        ]
        # The backtest's check did not run: its entry for the run says so, with the window.
        approved = AssetCheckKey(BACKTEST, "approved")
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([approved])[approved]
        assert (record.run_id, record.status.value) == (result.run_id, "FAILED")
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.severity == AssetCheckSeverity.WARN
        assert evaluation.description == (
            "not run: blocking check raw_events malformed_share_below_block_threshold of "
            f"{PARTITION} failed first"
        )
        assert evaluation.metadata["window"].value == PARTITION
        # A rerun that fails the same way, and the next ticks, send nothing more.
        rerun = materialize([bad_window], partition_key=PARTITION, instance=instance, raise_on_error=False)
        run_failure_sensors(instance, rerun)
        cursor = tick(instance, tick(instance, cursor))
        assert len(webhook) == 1


def test_warnings_are_one_message_per_site_and_tick(webhook: list[dict]) -> None:
    """Not judged (too few pairs) is a warning, not a failure: with the tick's other warnings of
    the site, one WARN message that lists each."""
    defs = Definitions(assets=[quiet_backtest])
    with instance_for_test() as instance:
        cursor = tick(instance, None, defs)
        windows = ["2026-03-03-06:00", "2026-03-03-08:00", "2026-03-03-10:00"]
        runs = [
            materialize([quiet_backtest], instance=instance, tags={WINDOW_TAG: window}).run_id
            for window in windows
        ]
        cursor = tick(instance, cursor, defs)
        assert len(webhook) == 1
        message = webhook[0]
        assert (message["site"], message["severity"], message["window"]) == (
            "demo-tribune",
            "WARN",
            f"{windows[0]}..{windows[-1]}",
        )
        assert message["url"] == "http://dagster.example:3000/assets/demo_tribune"
        assert [(w["window"], w["check"], w["run_id"]) for w in message["warnings"]] == [
            (window, "approved", run) for window, run in zip(windows, runs, strict=True)
        ]
        assert message["reason"].startswith(
            "3 warnings: 2026-03-03-06:00 recommendation_backtest approved: not judged"
        )
        # A new window's warning, a tick later: its own message; the ones sent stay sent.
        materialize([quiet_backtest], instance=instance, tags={WINDOW_TAG: "2026-03-03-12:00"})
        tick(instance, cursor, defs)
        assert len(webhook) == 2 and [w["window"] for w in webhook[1]["warnings"]] == ["2026-03-03-12:00"]


def test_a_run_that_fails_on_its_own_is_one_message_naming_the_asset(webhook: list[dict]) -> None:
    with instance_for_test() as instance:
        cursor = tick(instance, None, Definitions(assets=[crashing_ingestion]))
        result = materialize(
            [crashing_ingestion], partition_key=PARTITION, instance=instance, raise_on_error=False
        )
        assert not result.success
        run_failure_sensors(instance, result)
        tick(instance, cursor, Definitions(assets=[crashing_ingestion]))
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(RAW_EVENTS, "events_are_fresh")]
        )[AssetCheckKey(RAW_EVENTS, "events_are_fresh")]
        description = record.event.dagster_event.event_specific_data.description
    assert len(webhook) == 1  # the check it left unrun is recorded as such, not alerted
    message = webhook[0]
    assert (message["site"], message["window"], message["asset"], message["check"]) == (
        "demo-tribune",
        PARTITION,
        "raw_events",  # the asset people know, not the op `demo_tribune__ingest_window`
        None,
    )
    assert message["reason"] == "RuntimeError: second line"
    assert message["url"].endswith(f"/runs/{result.run_id}")
    assert description == "not run: raw_events failed first (RuntimeError: second line)"


def test_a_run_that_will_be_retried_sends_nothing(webhook: list[dict]) -> None:
    with instance_for_test() as instance:
        result = materialize(
            [crashing_ingestion],
            partition_key=PARTITION,
            instance=instance,
            raise_on_error=False,
            tags={WILL_RETRY_TAG: "true"},
        )
        run_failure_sensors(instance, result)
    assert webhook == []


def test_without_a_webhook_the_alert_is_logged(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(environment.ALERT_WEBHOOK_URL_VAR, raising=False)
    with instance_for_test() as instance:
        cursor = tick(instance, None)
        materialize([bad_window], partition_key=PARTITION, instance=instance, raise_on_error=False)
        tick(instance, cursor)
    captured = capsys.readouterr()
    assert "(blocking above 20%)" in captured.out + captured.err


def test_each_sites_pool_is_limited_before_its_first_run() -> None:
    """The queue daemon limits a pool only on the pass after it first sees a queued run in it
    (two runs of a new site queued together would both start): `site_pools` limits every site's
    pool as soon as the definitions load."""
    overrides = {"concurrency": {"pools": {"granularity": "run", "default_limit": 1}}}
    with instance_for_test(overrides=overrides) as instance:
        result = site_pools(build_sensor_context(instance=instance))
        assert set(instance.event_log_storage.get_concurrency_keys()) == {site_pool(s) for s in SITES}
        for site in SITES:
            assert instance.event_log_storage.get_concurrency_info(site_pool(site)).slot_count == 1
        assert "limited the pools of" in result.skip_message
        again = site_pools(build_sensor_context(instance=instance))
        assert again.skip_message == "every site's pool is limited"
    with instance_for_test() as instance:  # no default limit configured: nothing to do
        site_pools(build_sensor_context(instance=instance))
        assert instance.event_log_storage.get_concurrency_keys() == set()


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_a_window_of_bad_lines_pages_once_through_the_daemon(
    storage: str, webhook: list[dict], demo_data_dir: Path, tmp_path: Path
) -> None:
    """The real ingestion over a window whose objects are 23 % unusable lines, launched as the UI
    launches it; every sensor evaluated by the sensor daemon's own iteration, ticks apart."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data_dir, data_dir)
    window = DEMO_END - timedelta(hours=4)
    hours = [
        site_bucket_dir(data_dir, SITES[SITE]) / hour_folder(window + timedelta(hours=h)) for h in (0, 1)
    ]
    lines = sum(
        len(gzip.decompress(path.read_bytes()).splitlines()) for hour in hours for path in hour.iterdir()
    )
    garbage = b"\n".join(b"{not json %d" % i for i in range(int(lines * 0.3)))  # 23 % of the window's lines
    (hours[0] / "garbage.jsonl.gz").write_bytes(gzip.compress(garbage))

    now = DEMO_END - timedelta(hours=1)
    with (
        postgres_or_sqlite_url(storage, tmp_path) as serving_url,
        operated_instance(storage, data_dir, tmp_path, serving_url) as op,
    ):

        def sensor_daemon(at: datetime) -> None:
            with freeze_time(at):
                list(execute_sensor_iteration(op.workspace, LOG, None, None))

        sensor_daemon(now)  # the first ticks: each sensor starts from now
        run_id = op.launch_job(SITE, "recommendations_job", window_key(window), at=now)
        run = op.instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.FAILURE  # stopped by the blocking check
        for minutes in (2, 4, 6):
            sensor_daemon(now + timedelta(minutes=minutes))
        approved = AssetCheckKey(site_key(SITE, "recommendation_backtest"), "approved")
        record = op.instance.event_log_storage.get_latest_asset_check_execution_by_key([approved])[approved]

    assert len(webhook) == 1, webhook
    message = webhook[0]
    assert (message["site"], message["window"], message["asset"], message["severity"]) == (
        SITE,
        window_key(window),
        "raw_events",
        "ERROR",
    )
    assert message["check"] == "malformed_share_below_block_threshold"
    assert "of the window's lines are unusable" in message["reason"]
    assert [also["check"] for also in message["also"]] == ["malformed_share_below_warn_threshold"]
    # The backtest never ran in that run: its check says so, with the window.
    assert (record.run_id, record.status.value) == (run_id, "FAILED")
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.description.startswith("not run: blocking check raw_events malformed_share")
    assert evaluation.metadata["window"].value == window_key(window)

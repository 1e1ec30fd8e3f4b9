"""The alert sensors post a short JSON message per failure to a webhook (a local HTTP server
here), and log it when no webhook is set."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    DagsterEventType,
    Definitions,
    MaterializeResult,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from article_rec_assets.partitions import SITES, site_key, site_pool, window_check, window_partitions
from article_rec_assets.sensors import alert_on_check_failure, alert_on_run_failure, site_pools
from article_rec_assets.settings import environment

PARTITION = "2026-03-03-10:00"
PARTITIONS = window_partitions("demo-tribune")


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A local HTTP server that keeps every JSON body POSTed to it; its URL is the webhook."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(environment.ALERT_WEBHOOK_URL_VAR, f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv(environment.UI_URL_VAR, "http://dagster.example:3000")
    yield received
    server.shutdown()


@asset(
    partitions_def=PARTITIONS,
    check_specs=[
        window_check("volume_like_earlier_days", site_key("demo-tribune", "raw_events"), "test", PARTITIONS)
    ],
    key=site_key("demo-tribune", "raw_events"),
)
def failing_check_asset(context: AssetExecutionContext):
    yield MaterializeResult()
    yield AssetCheckResult(
        check_name="volume_like_earlier_days",
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description="no events where 950 were expected",
    )


@asset(partitions_def=PARTITIONS, key=site_key("demo-tribune", "article_catalogue"))
def failing_asset(context: AssetExecutionContext) -> None:
    raise RuntimeError("CatalogueSourceDown: https://cms.example answered 503")


DEFS = Definitions(assets=[failing_check_asset])


def test_a_failed_check_is_posted_with_its_site_and_window(webhook: list[dict]) -> None:
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, definitions=DEFS)
        alert_on_check_failure(context)  # first tick: starts watching from here
        result = materialize([failing_check_asset], partition_key=PARTITION, instance=instance)
        context = build_sensor_context(instance=instance, cursor=context.cursor, definitions=DEFS)
        alert_on_check_failure(context)
        assert webhook == [
            {
                "site": "demo-tribune",
                "window": "2026-03-03-10:00",
                "asset": "raw_events",
                "check": "volume_like_earlier_days",
                "severity": "ERROR",
                "reason": "no events where 950 were expected",
                "run_id": result.run_id,
                "url": f"http://dagster.example:3000/runs/{result.run_id}",
            }
        ]
        # The next tick sends nothing again.
        alert_on_check_failure(
            build_sensor_context(instance=instance, cursor=context.cursor, definitions=DEFS)
        )
        assert len(webhook) == 1


def test_a_failed_run_is_posted_with_the_failed_step_and_its_error(webhook: list[dict]) -> None:
    with instance_for_test() as instance:
        result = materialize(
            [failing_asset], partition_key=PARTITION, instance=instance, raise_on_error=False
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
        context = build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure,
        ).for_run_failure()
        alert_on_run_failure(context)
    assert len(webhook) == 1
    message = webhook[0]
    assert (message["site"], message["window"], message["asset"]) == (
        "demo-tribune",
        "2026-03-03-10:00",
        "article_catalogue",
    )
    assert "CatalogueSourceDown" in message["reason"] and message["check"] is None
    assert message["url"].endswith(f"/runs/{result.run_id}")


def test_without_a_webhook_the_alert_is_logged(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(environment.ALERT_WEBHOOK_URL_VAR, raising=False)
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, definitions=DEFS)
        alert_on_check_failure(context)
        materialize([failing_check_asset], partition_key=PARTITION, instance=instance)
        alert_on_check_failure(
            build_sensor_context(instance=instance, cursor=context.cursor, definitions=DEFS)
        )
    captured = capsys.readouterr()
    assert "no events where 950 were expected" in captured.out + captured.err


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

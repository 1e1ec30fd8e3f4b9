"""The earlier windows' materializations a window step reads, fetched together."""

from datetime import UTC, datetime, timedelta

from dagster import AssetKey, AssetMaterialization, DagsterInstance

from article_rec_assets.assets.ingestion import _NewestMetadata
from article_rec_assets.partitions import window_key

ASSET = AssetKey(["site", "reading_state"])
FIRST = datetime(2026, 3, 1, tzinfo=UTC)


def _materialize(instance: DagsterInstance, start: datetime, rows: int) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(ASSET, partition=window_key(start), metadata={"dagster/row_count": rows})
    )


def _queries(instance: DagsterInstance, monkeypatch) -> list[int]:
    calls: list[int] = []
    fetch = instance.fetch_materializations

    def counted(*args, **kwargs):
        calls.append(1)
        return fetch(*args, **kwargs)

    monkeypatch.setattr(instance, "fetch_materializations", counted)
    return calls


def test_the_windows_expected_are_fetched_in_one_query_newest_first(monkeypatch) -> None:
    instance = DagsterInstance.ephemeral()
    starts = [FIRST + timedelta(hours=2 * i) for i in range(6)]
    for i, start in enumerate(starts[:5]):  # the last window was never materialized
        _materialize(instance, start, rows=i)
        _materialize(instance, start, rows=100 + i)  # a rerun: its newest counts
    calls = _queries(instance, monkeypatch)
    newest = _NewestMetadata(instance, ASSET, starts)

    rows = [None if (m := newest(s)) is None else m["dagster/row_count"].value for s in reversed(starts)]

    assert rows == [None, 104, 103, 102, 101, 100]
    assert len(calls) == 1


def test_a_window_materialized_many_times_does_not_hide_the_others(monkeypatch) -> None:
    instance = DagsterInstance.ephemeral()
    quiet, busy = FIRST, FIRST + timedelta(hours=2)
    _materialize(instance, quiet, rows=7)
    for i in range(20):  # newer than the quiet window's, and more than the query's limit
        _materialize(instance, busy, rows=i)
    calls = _queries(instance, monkeypatch)
    newest = _NewestMetadata(instance, ASSET, [quiet, busy])

    assert newest(busy)["dagster/row_count"].value == 19
    assert newest(quiet)["dagster/row_count"].value == 7
    assert len(calls) == 2  # the query of both, then the crowded-out window on its own
    assert newest(FIRST - timedelta(hours=2)) is None  # a window not expected: asked for alone

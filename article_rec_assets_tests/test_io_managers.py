"""The IO managers: a table's trailing-window loads (a model asset reading its windows through the
table IO manager) read only the named columns, text as categories that all partitions share
(sorted), missing partitions skipped, with the same results downstream as the plain frames give;
pickled values are kept for `keep_days` (local and S3)."""

import logging
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    Output,
    ResourceParam,
    RetryPolicy,
    TimeWindowPartitionsDefinition,
    asset,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.utils import make_new_run_id

from article_rec_assets.assets import concat_partitions
from article_rec_assets.ingestion.ga4 import parse_ga4_object
from article_rec_assets.io_managers import (
    ParquetIOManager,
    PickleIOManager,
    S3ParquetIOManager,
    S3PickleIOManager,
    StoredGA4Parses,
    read_table_with_categories,
)
from article_rec_assets.recommenders.article_model import interaction_clicks
from article_rec_assets.recommenders.click_log import click_log
from article_rec_assets.recommenders.interaction_matrix import build_interaction_matrix
from article_rec_assets.recommenders.lists import article_popularity
from article_rec_assets.settings.sites import load_sites
from article_rec_assets.settings.windows import WINDOW_KEY_FORMAT
from article_rec_assets_tests.support import production_home
from article_rec_demo.generator.ga4 import ga4_event

DAYS = DailyPartitionsDefinition(start_date="2026-03-01")
UTC_DAY = pd.Timestamp("2026-03-01", tz="UTC")


def day_frame(day: int) -> pd.DataFrame:
    """Interactions of one day: readers r0..r3 on articles a0..a2, the text differing by day."""
    at = UTC_DAY + pd.Timedelta(days=day, hours=9)
    rows = [(f"r{(day + i) % 4}", f"s{day}-{i % 2}", f"a{(day * i) % 3}", 40.0 + 10 * i) for i in range(6)]
    frame = pd.DataFrame(rows, columns=["reader_id", "session_id", "external_id", "engaged_seconds"])
    frame["article_path"] = np.nan if day == 1 else "/news/" + frame["external_id"]  # all-null on day 1
    frame["day"] = at.floor("D")
    frame["page_views"] = 1
    frame["first_seen"] = at + pd.to_timedelta(range(6), unit="min")
    frame["last_seen"] = frame["first_seen"] + pd.Timedelta(minutes=1)
    return frame


def load_through_dagster(
    tmp_path: Path, columns: list[str] | None, days: list[int], ids_only: tuple[str, ...] = ()
) -> dict[str, pd.DataFrame]:
    loaded: dict[str, dict[str, pd.DataFrame]] = {}

    @asset(partitions_def=DAYS, io_manager_key="table_io_manager")
    def interactions(context: AssetExecutionContext) -> pd.DataFrame:
        return day_frame((pd.Timestamp(context.partition_key) - pd.Timestamp("2026-03-01")).days)

    @asset(deps=[interactions])
    def reader(context: AssetExecutionContext, table_io_manager: ResourceParam[object]) -> None:
        keys = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
        loaded["value"] = table_io_manager.load_windows(
            AssetKey("interactions"), keys, context.log, columns, ids_only
        )

    resources = {"table_io_manager": ParquetIOManager(base_dir=str(tmp_path))}
    for day in days:
        key = f"2026-03-0{day + 1}"
        assert materialize([interactions], partition_key=key, resources=resources).success
    result = materialize([interactions, reader], selection=[reader], resources=resources)
    assert result.success
    return loaded["value"]


def test_named_columns_are_read_with_shared_sorted_categories(tmp_path: Path) -> None:
    columns = ["reader_id", "external_id", "article_path", "engaged_seconds", "first_seen"]
    # Day 2 (2026-03-03) never materialized: skipped, not an error.
    frames = load_through_dagster(tmp_path, columns, days=[0, 1, 3])
    assert sorted(frames) == ["2026-03-01", "2026-03-02", "2026-03-04"]
    for key, frame in frames.items():
        day = (pd.Timestamp(key) - pd.Timestamp("2026-03-01")).days
        assert list(frame.columns) == columns
        expected = day_frame(day)[columns].reset_index(drop=True)
        got = frame.reset_index(drop=True)
        for name in columns[:3]:  # text: the same values, missing as missing
            assert isinstance(got[name].dtype, pd.CategoricalDtype)
            assert (
                got[name].astype(object).where(got[name].notna(), None).tolist()
                == expected[name].astype(object).where(expected[name].notna(), None).tolist()
            )
        pd.testing.assert_frame_equal(got[columns[3:]], expected[columns[3:]])
    categories = {name: frames["2026-03-01"][name].cat.categories for name in columns[:3]}
    for frame in frames.values():
        for name, shared in categories.items():
            assert frame[name].cat.categories.equals(shared)
            assert list(shared) == sorted(shared)
    together = concat_partitions(frames, pd.DataFrame())
    assert isinstance(together["reader_id"].dtype, pd.CategoricalDtype)
    assert len(together) == 18
    # The slices' own frame, handed on without a copy, is what copying them together gives.
    copied = pd.concat([frames[key] for key in sorted(frames)], ignore_index=True)
    pd.testing.assert_frame_equal(together, copied)
    assert together is frames.whole
    assert concat_partitions(dict(frames), pd.DataFrame()) is not frames.whole  # a plain dict: copied
    frames.pop("2026-03-02")  # a slice taken out: the others, not the whole
    assert len(concat_partitions(frames, pd.DataFrame())) == 12


def test_ids_read_without_their_text_give_the_same_click_log(tmp_path: Path) -> None:
    columns = ["reader_id", "session_id", "external_id", "first_seen"]
    frames = load_through_dagster(tmp_path, columns, days=[0, 1, 2], ids_only=("reader_id", "session_id"))
    together = concat_partitions(frames, pd.DataFrame())
    plain = pd.concat([day_frame(d)[columns] for d in range(3)], ignore_index=True)
    for name in ("reader_id", "session_id"):  # codes, no text: ranks in the text's order
        categories = together[name].cat.categories
        assert categories.equals(pd.RangeIndex(len(categories)))
        text = np.sort(plain[name].unique())
        assert list(text[together[name].cat.codes]) == plain[name].tolist()
    assert together["external_id"].astype(object).tolist() == plain["external_id"].tolist()
    clicks = interaction_clicks(together)
    assert clicks["session_id"].cat.categories.equals(together["session_id"].cat.categories)
    from_codes, from_text = click_log(clicks), click_log(interaction_clicks(plain))
    for name in ("reader", "session", "article", "timestamp", "article_ids"):
        assert np.array_equal(getattr(from_codes, name), getattr(from_text, name)), name


def test_without_columns_the_frames_are_read_as_stored(tmp_path: Path) -> None:
    frames = load_through_dagster(tmp_path, None, days=[0, 1])
    assert frames["2026-03-01"]["reader_id"].dtype == object
    assert "session_id" in frames["2026-03-02"]


@pytest.fixture(scope="module")
def plain_and_categorical(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = ["reader_id", "session_id", "external_id", "day", "engaged_seconds", "page_views"]
    columns += ["first_seen", "last_seen"]
    frames = load_through_dagster(tmp_path_factory.mktemp("store"), columns, days=[0, 1, 2, 3])
    categorical = concat_partitions(frames, pd.DataFrame())
    plain = pd.concat([day_frame(d)[columns] for d in range(4)], ignore_index=True)
    return plain, categorical


def test_the_stages_give_the_same_results_on_categories(plain_and_categorical) -> None:
    plain, categorical = plain_and_categorical
    clicks = interaction_clicks(categorical)
    assert isinstance(clicks["session_id"].dtype, pd.CategoricalDtype)  # never turned into strings
    text = ["reader_id", "session_id", "article_id"]
    pd.testing.assert_frame_equal(clicks.astype({c: object for c in text}), interaction_clicks(plain))
    from_categories, from_plain = click_log(clicks), click_log(interaction_clicks(plain))
    for name in ("reader", "session", "article", "timestamp", "article_ids"):
        assert np.array_equal(getattr(from_categories, name), getattr(from_plain, name)), name
    as_of = UTC_DAY + pd.Timedelta(days=4)
    pd.testing.assert_frame_equal(
        article_popularity(categorical, as_of, 7), article_popularity(plain, as_of, 7)
    )
    catalogue = pd.DataFrame(
        {
            "external_id": ["a0", "a1", "a2"],
            "published_at": [UTC_DAY] * 3,
            "exclude_reason": [None] * 3,
        }
    )
    settings = load_sites()["demo-city-paper"].training.model_copy(
        update={"min_readers_per_article": 0, "min_articles_per_reader": 0, "min_seconds_per_reader": 0}
    )
    from_categories = build_interaction_matrix(categorical, catalogue, as_of, settings)
    from_plain = build_interaction_matrix(plain, catalogue, as_of, settings)
    assert from_plain.matrix.nnz > 0
    assert (from_categories.matrix != from_plain.matrix).nnz == 0
    assert list(from_categories.reader_ids) == list(from_plain.reader_ids)
    assert list(from_categories.article_ids) == list(from_plain.article_ids)
    assert from_categories.reader_ids.dtype == object


WINDOWS = TimeWindowPartitionsDefinition(
    start="2026-03-01-00:00", fmt=WINDOW_KEY_FORMAT, cron_schedule="0 */2 * * *"
)


def write_windows(manager, keys: list[str], instance: DagsterInstance | None = None) -> list[str]:
    """Materialize a pickled per-window value for each key, in order; the run logs."""

    @asset(partitions_def=WINDOWS)
    def model(context: AssetExecutionContext) -> dict:
        return {"window": context.partition_key}

    messages = []
    with nullcontext(instance) if instance else DagsterInstance.ephemeral() as instance:
        for key in keys:
            result = materialize(
                [model], partition_key=key, resources={"io_manager": manager}, instance=instance
            )
            assert result.success
            messages += [
                e.user_message for e in instance.all_logs(result.run_id) if "removed" in e.user_message
            ]
    return messages


def read_window(manager, key: str):
    @asset(partitions_def=WINDOWS, name="model")
    def model_source() -> dict:
        raise AssertionError("not run")

    @asset(partitions_def=WINDOWS)
    def reader(model: dict) -> dict:
        return model

    return materialize(
        [model_source, reader],
        selection=[reader],
        partition_key=key,
        resources={"io_manager": manager},
        raise_on_error=False,
    )


KEYS = ["2026-03-01-00:00", "2026-03-01-22:00", "2026-03-02-00:00", "2026-03-02-02:00", "2026-03-03-00:00"]


def test_pickled_values_are_kept_for_keep_days_before_the_newest(tmp_path: Path) -> None:
    manager = PickleIOManager(base_dir=str(tmp_path), keep_days=1)
    messages = write_windows(manager, KEYS[:4])
    # 02:00 on the 2nd keeps a day back from it: 00:00 on the 1st goes, 22:00 stays.
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == KEYS[1:4]
    assert any("removed 1 stored values of model" in m for m in messages)
    (tmp_path / "model" / "notes.txt").write_text("not a window")
    write_windows(manager, KEYS[4:])
    # 00:00 on the 3rd keeps 00:00 on the 2nd (a day back is kept), not 22:00 on the 1st.
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [*KEYS[2:], "notes.txt"]
    assert read_window(manager, KEYS[4]).success
    pruned = read_window(manager, KEYS[0])
    assert not pruned.success
    failure = next(e for e in pruned.all_events if e.event_type_value == "STEP_FAILURE")
    assert "kept for 1 days; re-materialize it for this window" in str(failure.step_failure_data.error)


def unfinished_run(instance: DagsterInstance, status: DagsterRunStatus, **tags: str) -> DagsterRun:
    run = DagsterRun(job_name="backfill_run", run_id=make_new_run_id(), status=status, tags=tags)
    return instance.add_run(run)


@pytest.fixture(params=["sqlite", "postgresql"])
def run_storage_instance(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The embedded default's instance (SQLite on disk) and the production one (PostgreSQL)."""
    if request.param == "sqlite":
        (tmp_path / "sqlite_home").mkdir()
        with instance_for_test(temp_dir=str(tmp_path / "sqlite_home")) as instance:
            yield instance
        return
    home = production_home(tmp_path / "pg_home", request.getfixturevalue("dagster_database"), monkeypatch)
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield instance


def test_windows_that_unfinished_runs_work_on_are_not_removed(tmp_path: Path, run_storage_instance) -> None:
    """A backfill's runs days apart: the newer one's write must not remove the value an older
    one (started, or waiting to rerun its later steps) has written and is about to read. The runs'
    statuses and tags are read back from the instance's run storage, SQLite and PostgreSQL."""
    manager = PickleIOManager(base_dir=str(tmp_path / "values"), keep_days=1)
    stored = lambda: sorted(p.name for p in (tmp_path / "values" / "model").iterdir())  # noqa: E731
    with nullcontext(run_storage_instance) as instance:
        write_windows(manager, KEYS[:2], instance)
        running = unfinished_run(
            instance, DagsterRunStatus.STARTED, **{PARTITION_NAME_TAG: f"big-metro|{KEYS[0]}"}
        )
        waiting = unfinished_run(  # created, not started (a queued run is filtered the same way)
            instance,
            DagsterRunStatus.NOT_STARTED,
            **{ASSET_PARTITION_RANGE_START_TAG: KEYS[1], ASSET_PARTITION_RANGE_END_TAG: KEYS[1]},
        )
        messages = write_windows(manager, KEYS[4:], instance)
        assert stored() == [KEYS[0], KEYS[1], KEYS[4]]
        assert any("removed 0 stored values" in m and "kept 2 that unfinished runs" in m for m in messages)
        instance.report_run_failed(running)
        instance.report_run_canceled(waiting)
        write_windows(manager, KEYS[4:], instance)
        assert stored() == [KEYS[4]]


def test_without_keep_days_every_value_stays(tmp_path: Path) -> None:
    write_windows(PickleIOManager(base_dir=str(tmp_path), keep_days=None), KEYS)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == KEYS


def test_values_in_s3_are_kept_for_keep_days(s3_resource, s3_client) -> None:
    bucket = "io-manager-keep-days"
    s3_client.create_bucket(Bucket=bucket)
    manager = S3PickleIOManager(s3_resource=s3_resource, s3_bucket=bucket, s3_prefix="values", keep_days=1)
    write_windows(manager, KEYS)
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="values/")["Contents"]
    assert sorted(item["Key"] for item in listed) == [f"values/model/{k}" for k in KEYS[2:]]
    assert read_window(manager, KEYS[4]).success


@pytest.mark.parametrize("row_group_size", [1_000_000, 150_000])
def test_a_large_partition_reads_as_one_dictionary_where_its_batches_share_it(
    tmp_path: Path, row_group_size
) -> None:
    rows = 400_000  # more than the reader's batch: it hands the row group over in several
    readers = pd.Series([f"reader-{i // 8:06d}" for i in range(rows)])  # each row group its own
    frame = pd.DataFrame({"reader_id": readers, "engaged_seconds": np.arange(rows, dtype="float64")})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "w.parquet", row_group_size=row_group_size)
    table = read_table_with_categories(str(tmp_path / "w.parquet"), ["reader_id", "engaged_seconds"])
    column = table.column("reader_id")
    assert pa.types.is_dictionary(column.type)
    # One row group: one array over its one dictionary; several: each its own, for unify to merge.
    assert column.num_chunks == 1 if row_group_size >= rows else column.num_chunks >= 3
    assert column.to_pylist() == readers.tolist()
    assert table.column("engaged_seconds").to_pylist() == frame["engaged_seconds"].tolist()


def test_a_model_value_is_stored_under_its_window_and_read_as_of_the_latest_materialization(
    tmp_path: Path,
) -> None:
    """One value per site, trained as of a window: stored under the window its metadata names,
    the newest two kept (the next window's backtest reads the one before), a retrain as of an
    older window (a backfill's) removing nothing newer; a downstream load reads the window of the
    asset's latest materialization."""
    manager = PickleIOManager(base_dir=str(tmp_path))
    seen: list[dict] = []

    def trained_as_of(window: str):
        @asset(name="model")
        def model() -> Output[dict]:
            return Output({"as_of": window}, metadata={"window": window})

        @asset
        def reader(model: dict) -> None:
            seen.append(model)

        return [model, reader]

    stored = lambda: sorted(p.name for p in (tmp_path / "model").iterdir())  # noqa: E731
    with DagsterInstance.ephemeral() as instance:
        for window in (KEYS[2], KEYS[3], KEYS[4], KEYS[0]):
            assert materialize(
                trained_as_of(window), resources={"io_manager": manager}, instance=instance
            ).success
            assert seen[-1] == {"as_of": window}
        # 00:00 on the 3rd kept the window before it (02:00 on the 2nd is older than that: gone);
        # the retrain as of the 1st removed nothing newer.
        assert stored() == [KEYS[0], KEYS[4]]
        assert manager.create_io_manager(None).load_windows(
            AssetKey("model"), [KEYS[4]], logging.getLogger("test")
        )[KEYS[4]] == {"as_of": KEYS[4]}


@pytest.mark.parametrize("columns", [None, ["reader_id"]])
@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_corrupt_window_fails_once_naming_its_file(
    tmp_path: Path, storage: str, columns: list[str] | None, request
) -> None:
    """A stored window's file that is not Parquet: the step fails naming the file, without the
    retries of its policy (they would read the same bytes)."""
    key = AssetKey(["site", "interactions"])
    window = KEYS[0]
    if storage == "local":
        manager = ParquetIOManager(base_dir=str(tmp_path))
        path = tmp_path / "site" / "interactions" / f"{window}.parquet"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PAR1 cut short")
        where = str(path)
    else:
        s3_client = request.getfixturevalue("s3_client")
        s3_client.create_bucket(Bucket="io-manager-corrupt")
        manager = S3ParquetIOManager(
            s3_resource=request.getfixturevalue("s3_resource"), s3_bucket="io-manager-corrupt", s3_prefix="t"
        )
        s3_client.put_object(
            Bucket="io-manager-corrupt", Key=f"t/site/interactions/{window}.parquet", Body=b"x"
        )
        where = f"s3://io-manager-corrupt/t/site/interactions/{window}.parquet"

    @asset(retry_policy=RetryPolicy(max_retries=2))
    def reader(context: AssetExecutionContext, table_io_manager: ResourceParam[object]) -> None:
        table_io_manager.load_windows(key, [window], context.log, columns)

    result = materialize([reader], resources={"table_io_manager": manager}, raise_on_error=False)
    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert events.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in events
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"{where} is not a readable Parquet file" in str(failure.step_failure_data.error)


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_ga4_file_parses_are_kept_beside_the_windows_and_removed_days_later(
    tmp_path: Path, storage: str, request
) -> None:
    if storage == "local":
        manager = ParquetIOManager(base_dir=str(tmp_path))
    else:
        s3_client = request.getfixturevalue("s3_client")
        s3_client.create_bucket(Bucket="io-manager-ga4-parses")
        manager = S3ParquetIOManager(
            s3_resource=request.getfixturevalue("s3_resource"),
            s3_bucket="io-manager-ga4-parses",
            s3_prefix="t",
        )
    lines = [
        orjson.dumps(
            ga4_event("page_view", datetime(2026, 12, 1, 10, tzinfo=UTC), "u1", 1, "https://x.example/a")
        ),
        b"{not json",
        orjson.dumps(
            ga4_event("scroll", datetime(2026, 12, 1, 10, 1, tzinfo=UTC), "u1", 1, "https://x.example/a")
        ),
    ]
    parsed = parse_ga4_object("ga4/events_20261201/0.json", b"\n".join(lines), None, 3600)
    first = date(2026, 12, 1)
    found: dict = {}

    @asset
    def keeper(table_io_manager: ResourceParam[object]) -> None:
        kept = StoredGA4Parses(table_io_manager, "site")
        found["missing"] = kept.get(first, "d0")
        kept.put(first, "d0", parsed)
        found["kept"] = kept.get(first, "d0")
        for days in range(1, 10):  # later days' parses: the first day's goes after KEEP_DAYS
            kept.put(first + timedelta(days=days), f"d{days}", parsed)
            found[days] = kept.get(first, "d0") is not None

    assert materialize([keeper], resources={"table_io_manager": manager}).success
    assert found["missing"] is None
    pd.testing.assert_frame_equal(found["kept"].records, parsed.records)
    pd.testing.assert_frame_equal(found["kept"].rejects, parsed.rejects)
    assert len(parsed.records) == 2 and parsed.rejects["reason"].tolist() == ["invalid_json"]
    keep = StoredGA4Parses.KEEP_DAYS
    assert [found[days] for days in range(1, 10)] == [days <= keep for days in range(1, 10)]

"""The table IO manager's trailing-window loads: only the named columns, text as categories that
all partitions share (sorted), missing partitions skipped, and the same results downstream as
the plain frames give."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    materialize,
)

from article_rec_assets.assets import concat_partitions, trailing_input
from article_rec_assets.io_managers import ParquetIOManager
from article_rec_assets.recommenders.article_model import interaction_clicks
from article_rec_assets.recommenders.click_log import click_log
from article_rec_assets.recommenders.interaction_matrix import build_interaction_matrix
from article_rec_assets.recommenders.serving import article_popularity
from article_rec_assets.settings.sites import load_sites

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
    tmp_path: Path, columns: list[str] | None, days: list[int]
) -> dict[str, pd.DataFrame]:
    loaded: dict[str, dict[str, pd.DataFrame]] = {}

    @asset(partitions_def=DAYS, io_manager_key="table_io_manager")
    def interactions(context: AssetExecutionContext) -> pd.DataFrame:
        return day_frame((pd.Timestamp(context.partition_key) - pd.Timestamp("2026-03-01")).days)

    @asset(
        partitions_def=DAYS,
        ins={"interactions": trailing_input(TimeWindowPartitionMapping(start_offset=-3), columns)},
    )
    def reader(interactions: dict[str, pd.DataFrame]) -> None:
        loaded["value"] = interactions

    resources = {"table_io_manager": ParquetIOManager(base_dir=str(tmp_path))}
    for day in days:
        key = f"2026-03-0{day + 1}"
        assert materialize([interactions], partition_key=key, resources=resources).success
    result = materialize(
        [interactions, reader], selection=[reader], partition_key="2026-03-04", resources=resources
    )
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

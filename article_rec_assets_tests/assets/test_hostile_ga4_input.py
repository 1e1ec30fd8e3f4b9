"""The GA4 hostile corpus (`hostile_ga4.py`) through the real assets, for one window of a site
reading GA4: materialized by Dagster with the good readers and every case beside them, against
the same window with the good readers alone. Each case's lines are set aside with the reason it
names (per file), its unwanted events are filtered as it says, and every good reader's
interactions come out exactly as without the corpus."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import instance_for_test, materialize

from article_rec_assets.definitions import all_assets
from article_rec_assets.ingestion.ga4 import INTRADAY
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets.settings.sites import GA4Settings
from article_rec_assets_tests.assets.hostile_ga4 import WINDOW, cases, good_records, good_seconds
from article_rec_assets_tests.support import ingestion_resources, keys
from article_rec_demo.generator.ga4 import write_ga4_table

SITE = "demo-city-paper"
LAST = WINDOW.replace(hour=22)  # the window holding the property day's end (UTC)
SELECTION = keys.ingest_only(SITE) | keys.selection(SITE, "sessionized_interactions")


def materialized(tmp_path: Path, with_corpus: bool) -> dict:
    site = SITES[SITE]
    data, storage = tmp_path / "data", tmp_path / "storage"
    folder = write_ga4_table(data, site, INTRADAY, WINDOW, good_records(), name="good.json.gz").parent
    if with_corpus:
        for n, case in enumerate(cases()):
            (folder / f"hostile-{n:02d}-{case.name}.json.gz").write_bytes(case.data)
    resources = ingestion_resources(EventBucket(root_dir=str(data)), data, storage)
    with instance_for_test() as instance:
        result = materialize(
            all_assets,
            selection=SELECTION,
            partition_key=window_key(WINDOW),
            resources=resources,
            instance=instance,
        )
        assert result.success
        metadata = {}
        for asset in ("raw_events", "sessionized_interactions"):
            record = instance.get_latest_materialization_event(keys.key(SITE, asset))
            metadata[asset] = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        # Lines without a readable time are counted by the window holding the day's end.
        materialize(
            all_assets,
            selection=keys.ingest_only(SITE),
            partition_key=window_key(LAST),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    def table(asset: str) -> pd.DataFrame:
        return pd.read_parquet(keys.window_table(storage, SITE, asset, WINDOW))

    last_rejects = pd.read_parquet(keys.window_table(storage, SITE, "quarantined_event_lines", LAST))
    return {
        "events": table("raw_events"),
        "rejects": pd.concat([table("quarantined_event_lines"), last_rejects], ignore_index=True),
        "interactions": table("sessionized_interactions"),
        "metadata": metadata,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    site = SITES[SITE]
    ga4_site = site.model_copy(update={"events": site.events.model_copy(update={"ga4": GA4Settings()})})
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SITES, SITE, ga4_site)
        return {
            "baseline": materialized(tmp_path_factory.mktemp("baseline"), with_corpus=False),
            "hostile": materialized(tmp_path_factory.mktemp("hostile"), with_corpus=True),
        }


def good_rows(interactions: pd.DataFrame) -> pd.DataFrame:
    rows = interactions[interactions["reader_id"].isin(list(good_seconds()))]
    return rows.sort_values(["reader_id", "session_id", "external_id"]).reset_index(drop=True)


def test_every_good_reader_keeps_exactly_its_interactions(runs) -> None:
    baseline, hostile = (
        good_rows(runs["baseline"]["interactions"]),
        good_rows(runs["hostile"]["interactions"]),
    )
    pd.testing.assert_frame_equal(hostile, baseline)
    assert dict(zip(baseline["reader_id"], baseline["engaged_seconds"], strict=True)) == good_seconds()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_each_case_is_set_aside_with_its_reason(runs, case) -> None:
    rejects = runs["hostile"]["rejects"]
    n = [c.name for c in cases()].index(case.name)
    mine = rejects[rejects["source"].str.contains(f"hostile-{n:02d}-{case.name}", regex=False)]
    assert mine["reason"].value_counts().to_dict() == case.quarantined, mine[["line_number", "reason"]]


def test_the_rest_of_the_corpus_is_filtered_kept_or_deduplicated_as_each_case_says(runs) -> None:
    hostile, baseline = runs["hostile"]["metadata"], runs["baseline"]["metadata"]
    filtered: dict[str, int] = {}
    for case in cases():
        for reason, count in case.filtered.items():
            filtered[reason] = filtered.get(reason, 0) + count
    assert baseline["sessionized_interactions"]["events_filtered"] == {}
    assert hostile["sessionized_interactions"]["events_filtered"] == filtered
    readers = set(runs["hostile"]["interactions"]["reader_id"]) - set(good_seconds())
    assert readers == {"nul-page", "good-0\ufffdx", "stuck-timer", "copy", "clicker", "cut"}
    assert len(readers) == sum(c.readers for c in cases())
    assert hostile["raw_events"]["duplicates_dropped"]["duplicate_in_window"] == sum(
        c.duplicates for c in cases()
    )
    assert hostile["raw_events"]["other_events_dropped"] == {"click": 1}
    assert hostile["raw_events"]["other_events_engaged_seconds"] == 12.0
    # Each hostile reader read only what its case says: the click's 12 s are the clicker's.
    seconds = runs["hostile"]["interactions"].groupby("reader_id")["engaged_seconds"].sum()
    assert seconds[["nul-page", "good-0\ufffdx", "stuck-timer", "copy", "clicker", "cut"]].tolist() == [
        0.0,
        10.0,
        0.0,
        10.0,
        12.0,
        10.0,
    ]

"""The hostile-input corpus (`hostile.py`) through the real assets: `raw_events`,
`quarantined_event_lines`, `sessionized_interactions` and `article_catalogue`, materialized by
Dagster for one window that holds the good events and every case beside them, against the same
window with the good events alone.

Each case's lines are set aside with the reason it names (per object), its valid-but-unwanted
events are filtered as it says, and every good reader's interactions come out exactly as without
the corpus: same rows, same engaged time."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest
from dagster import instance_for_test, materialize

from article_rec_assets.definitions import all_assets
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.resources import EventBucket
from article_rec_assets_tests.assets.hostile import ARTICLES, cases, good_events
from article_rec_assets_tests.support import ingestion_resources, keys

SITE = "demo-city-paper"
WINDOW = datetime(2026, 3, 3, 10, tzinfo=UTC)
KEY = window_key(WINDOW)
SELECTION = keys.ingest_only(SITE) | keys.selection(SITE, "sessionized_interactions", "article_catalogue")
BOUND_MB = 4  # the site's max_object_megabytes here, so that the bomb case stays small


def write_bucket(data_dir: Path, with_corpus: bool) -> None:
    site = SITES[SITE]
    good = good_events()
    half = len(good) // 2
    for hour, part in ((10, good[:half]), (11, good[half:])):
        folder = site_bucket_dir(data_dir, site) / hour_folder(WINDOW.replace(hour=hour))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "good.jsonl.gz").write_bytes(gzip.compress(b"\n".join(part) + b"\n"))
    if with_corpus:
        folder = site_bucket_dir(data_dir, site) / hour_folder(WINDOW)
        for n, case in enumerate(cases()):
            (folder / f"hostile-{n:02d}-{case.name}{'.gz' if case.gz else ''}").write_bytes(case.data)
    catalogue = data_dir / site.articles.catalogue.path
    catalogue.parent.mkdir(parents=True, exist_ok=True)
    catalogue.write_text(
        "".join(
            orjson.dumps(
                {
                    "external_id": path.split("/")[2],
                    "path": path,
                    "title": f"Story {i}",
                    "published_at": "2026-03-01T08:00:00Z",
                }
            ).decode()
            + "\n"
            for i, path in enumerate(ARTICLES)
        )
    )


def materialized(tmp_path: Path, with_corpus: bool) -> dict:
    data, storage = tmp_path / "data", tmp_path / "storage"
    write_bucket(data, with_corpus)
    resources = ingestion_resources(EventBucket(root_dir=str(data)), data, storage)
    with instance_for_test() as instance:
        result = materialize(
            all_assets, selection=SELECTION, partition_key=KEY, resources=resources, instance=instance
        )
        assert result.success
        metadata = {}
        for asset in ("raw_events", "sessionized_interactions", "article_catalogue"):
            record = instance.get_latest_materialization_event(keys.key(SITE, asset))
            metadata[asset] = {k: v.value for k, v in record.asset_materialization.metadata.items()}

    def table(asset: str) -> pd.DataFrame:
        return pd.read_parquet(keys.window_table(storage, SITE, asset, WINDOW))

    return {
        "events": table("raw_events"),
        "rejects": table("quarantined_event_lines"),
        "interactions": table("sessionized_interactions"),
        "catalogue": table("article_catalogue"),
        "metadata": metadata,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    site = SITES[SITE]
    patched = site.model_copy(
        update={"events": site.events.model_copy(update={"max_object_megabytes": BOUND_MB})}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SITES, SITE, patched)
        return {
            "baseline": materialized(tmp_path_factory.mktemp("baseline"), with_corpus=False),
            "hostile": materialized(tmp_path_factory.mktemp("hostile"), with_corpus=True),
        }


def good_rows(interactions: pd.DataFrame) -> pd.DataFrame:
    rows = interactions[interactions["reader_id"].str.startswith("good-")]
    return rows.sort_values(["reader_id", "session_id", "external_id"]).reset_index(drop=True)


def test_the_corpus_is_large_and_varied() -> None:
    corpus = cases()
    assert len(corpus) >= 60 and len({c.name for c in corpus}) == len(corpus)
    reasons = {r for c in corpus for r in c.quarantined} | {r for c in corpus for r in c.filtered}
    assert len(reasons) >= 20, reasons


def test_every_good_reader_keeps_exactly_its_interactions(runs) -> None:
    baseline, hostile = (
        good_rows(runs["baseline"]["interactions"]),
        good_rows(runs["hostile"]["interactions"]),
    )
    assert len(baseline) == 400 and baseline["engaged_seconds"].gt(0).all()
    pd.testing.assert_frame_equal(hostile, baseline)
    # By Snowplow's rules, from the generator's own numbers: reader r pings 2 + r % 6 times.
    expected = {f"good-{r}": 5 + 10 * (2 + r % 6 - 1) for r in range(400)}
    assert dict(zip(baseline["reader_id"], baseline["engaged_seconds"], strict=True)) == expected
    good_ids = runs["baseline"]["events"]["event_id"]
    assert good_ids.isin(runs["hostile"]["events"]["event_id"]).all()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_each_case_is_set_aside_with_its_reason(runs, case) -> None:
    rejects = runs["hostile"]["rejects"]
    n = [c.name for c in cases()].index(case.name)
    mine = rejects[rejects["source"].str.contains(f"hostile-{n:02d}-{case.name}", regex=False)]
    assert mine["reason"].value_counts().to_dict() == case.quarantined, mine[
        ["line_number", "reason", "excerpt"]
    ]
    assert mine["excerpt"].str.len().le(500).all()


def test_the_rest_of_the_corpus_is_filtered_kept_or_deduplicated_as_each_case_says(runs) -> None:
    hostile, baseline = runs["hostile"]["metadata"], runs["baseline"]["metadata"]
    filtered: dict[str, int] = {}
    for case in cases():
        for reason, count in case.filtered.items():
            filtered[reason] = filtered.get(reason, 0) + count
    assert baseline["sessionized_interactions"]["events_filtered"] == {}
    assert hostile["sessionized_interactions"]["events_filtered"] == filtered
    readers = set(runs["hostile"]["interactions"]["reader_id"]) - set(
        runs["baseline"]["interactions"]["reader_id"]
    )
    assert len(readers) == sum(c.readers for c in cases()), sorted(readers)
    dropped = hostile["raw_events"]["duplicates_dropped"]
    assert dropped["duplicate_in_window"] == sum(c.duplicates for c in cases())
    # The catalogue is the good one: nothing of the corpus became an article.
    assert sorted(runs["hostile"]["catalogue"]["external_id"]) == sorted(
        runs["baseline"]["catalogue"]["external_id"]
    )


def test_a_rerun_of_the_hostile_window_gives_the_same_tables(runs, tmp_path: Path) -> None:
    site = SITES[SITE]
    patched = site.model_copy(
        update={"events": site.events.model_copy(update={"max_object_megabytes": BOUND_MB})}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SITES, SITE, patched)
        again = materialized(tmp_path, with_corpus=True)
    for table in ("events", "rejects", "interactions"):
        first = runs["hostile"][table].drop(columns=["_source"], errors="ignore")
        second = again[table].drop(columns=["_source"], errors="ignore")
        pd.testing.assert_frame_equal(first, second, check_like=False)

"""Incremental training through Dagster: a retrain that learns from the ranker examples stored by
earlier windows publishes what a fit that builds every label window's examples from scratch
publishes, and the backtest judges the same whether it reads the stored model of the window
before or fits that model again."""

import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, instance_for_test, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from article_rec_assets.assets import WINDOW_TAG
from article_rec_assets.definitions import all_assets
from article_rec_assets.partitions import window_key
from article_rec_assets.recommenders.article_model import MODEL_VERSION
from article_rec_assets.recommenders.lists import RECOMMENDATION_COLUMNS
from article_rec_assets_tests.support import (
    DEMO_WINDOWS,
    keys,
    local_resources,
    postgres_schema_url,
    stored_in,
)

# Publishes to the serving database on PostgreSQL.
pytestmark = pytest.mark.postgres

SITE = "demo-tribune"
WINDOWS = DEMO_WINDOWS
BEFORE = window_key(WINDOWS[-2])  # W-1
NEWEST = window_key(WINDOWS[-1])  # W
LABEL_WINDOWS = 12  # the site's ranker.label_windows (the default)
# What the model assets fit on: a storage holding only these has no stored ranker examples.
WINDOW_INPUTS = ("sessionized_interactions", "article_catalogue")


def metadata_of(result, asset: str) -> dict:
    """The run's (one) materialization of the site's `asset`: its metadata as plain values."""
    found = [
        m
        for m in result.asset_materializations_for_node(keys.step(SITE, asset))
        if m.asset_key == keys.key(SITE, asset)
    ]
    assert len(found) == 1, f"{asset}: {len(found)} materializations in the run"
    return {k: v.value for k, v in found[0].metadata.items()}


def sorted_recommendations(path: Path) -> pd.DataFrame:
    recs = pd.read_parquet(path)[list(RECOMMENDATION_COLUMNS)]
    return recs.sort_values(
        ["model_type", "source_entity_id", "rank", "recommended_external_id"]
    ).reset_index(drop=True)


def approved_checks(result) -> list[tuple]:
    """The run's evaluations of the backtest's `approved` check: (passed, severity, description)."""
    return [
        (e.passed, e.severity, e.description)
        for e in result.get_asset_check_evaluations()
        if e.check_name == "approved"
    ]


@dataclass
class Incremental:
    """Storage A: the history ingested, then the whole graph for W-1 and for W (their ranker
    examples stored by those windows' runs). W's run leaves out the publish, so W-1's model stays
    the published one that every backtest of W is compared with."""

    instance: DagsterInstance
    resources: dict
    storage: Path
    data_dir: Path
    model_before: dict  # trained_model's metadata in W-1's run
    model: dict  # trained_model's metadata in W's run
    backtest: dict  # recommendation_backtest's metadata in W's run
    approved: list[tuple]  # its check's evaluations in W's run
    recommendations: pd.DataFrame  # article_recommendations of W's run

    def model_run(self, selection, storage: Path | None = None):
        """Model assets alone, as of W (told by the run's tag), on `storage` (default: A)."""
        resources = self.resources if storage is None else stored_in(self.resources, storage)
        return materialize(
            all_assets,
            selection=selection,
            tags={WINDOW_TAG: NEWEST},
            resources=resources,
            instance=self.instance,
        )


@pytest.fixture(scope="module")
def incremental(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incremental]:
    storage = tmp_path_factory.mktemp("storage_a")
    with postgres_schema_url() as serving_url, instance_for_test() as instance:
        resources = local_resources(demo_data_dir, storage, serving_url)
        history = {
            ASSET_PARTITION_RANGE_START_TAG: window_key(WINDOWS[0]),
            ASSET_PARTITION_RANGE_END_TAG: window_key(WINDOWS[-3]),
        }
        materialize(
            all_assets,
            selection=keys.ingestion(SITE) | keys.selection(SITE, "article_catalogue"),
            tags=history,
            resources=resources,
            instance=instance,
        )
        whole = keys.site_assets(SITE)
        runs = {}
        for window, selection in (
            (BEFORE, whole),
            (NEWEST, whole - keys.selection(SITE, "published_recommendations")),
        ):
            runs[window] = materialize(
                all_assets,
                selection=selection,
                partition_key=window,
                resources=resources,
                instance=instance,
            )
        yield Incremental(
            instance,
            resources,
            storage,
            demo_data_dir,
            model_before=metadata_of(runs[BEFORE], "trained_model"),
            model=metadata_of(runs[NEWEST], "trained_model"),
            backtest=metadata_of(runs[NEWEST], "recommendation_backtest"),
            approved=approved_checks(runs[NEWEST]),
            recommendations=sorted_recommendations(
                keys.model_table(storage, SITE, "article_recommendations")
            ),
        )


def test_a_retrain_on_stored_examples_publishes_what_a_fit_from_scratch_does(
    incremental: Incremental, tmp_path: Path
) -> None:
    stored = keys.window_folder(incremental.storage, SITE, "ranker_examples")
    assert (stored / BEFORE).is_file() and (stored / NEWEST).is_file()
    # W-1's retrain found only its own window's examples stored; W's found W-1's and its own.
    assert incremental.model_before["window"] == BEFORE
    assert incremental.model_before["label_windows_stored"] == 1
    assert incremental.model_before["label_windows_built_here"] == LABEL_WINDOWS - 1
    assert incremental.model["window"] == NEWEST
    assert incremental.model["label_windows_stored"] == 2
    assert incremental.model["label_windows_built_here"] == LABEL_WINDOWS - 2
    assert incremental.model["ranker"].startswith("LambdaRank")  # the examples were learned from

    # Storage B: the same windows' interactions and catalogues; no ranker examples, no model.
    storage = tmp_path / "storage_b"
    for name in WINDOW_INPUTS:
        shutil.copytree(
            keys.window_folder(incremental.storage, SITE, name), keys.window_folder(storage, SITE, name)
        )
    result = incremental.model_run(
        keys.selection(SITE, "trained_model", "article_popularity", "article_recommendations"), storage
    )
    scratch = metadata_of(result, "trained_model")
    assert scratch["window"] == NEWEST
    assert scratch["label_windows_stored"] == 0
    assert scratch["label_windows_built_here"] == LABEL_WINDOWS
    assert not keys.window_folder(storage, SITE, "ranker_examples").exists()
    for name in ("windows_read", "clicks", "sessions", "candidate_articles", "articles_with_lists", "ranker"):
        assert scratch[name] == incremental.model[name], name

    from_scratch = sorted_recommendations(keys.model_table(storage, SITE, "article_recommendations"))
    assert (from_scratch["model_type"] == "article").sum() > 1000
    pd.testing.assert_frame_equal(from_scratch, incremental.recommendations, check_exact=True)


def test_stored_examples_of_another_fit_version_are_rebuilt_not_learned_from(
    incremental: Incremental, tmp_path: Path
) -> None:
    storage = tmp_path / "storage_c"
    shutil.copytree(incremental.storage, storage)
    path = keys.window_folder(storage, SITE, "ranker_examples") / BEFORE
    examples = pickle.loads(path.read_bytes())
    assert examples is not None and examples.version == MODEL_VERSION
    # As an older code stored them: another version, and one feature column fewer.
    examples.version, examples.features = "4", examples.features[:, :-1]
    path.write_bytes(pickle.dumps(examples))

    result = incremental.model_run(
        keys.selection(SITE, "trained_model", "article_popularity", "article_recommendations"), storage
    )
    model = metadata_of(result, "trained_model")
    assert model["label_windows_outdated"] == 1
    assert model["label_windows_stored"] == 1  # W's own, still current
    assert model["label_windows_built_here"] == LABEL_WINDOWS - 1
    rebuilt = sorted_recommendations(keys.model_table(storage, SITE, "article_recommendations"))
    pd.testing.assert_frame_equal(rebuilt, incremental.recommendations, check_exact=True)


def test_the_backtest_judges_the_same_on_the_stored_model_as_on_one_fitted_again(
    incremental: Incremental, tmp_path: Path
) -> None:
    # W's run evaluated the model W-1's run stored (kept beside W's).
    stored = incremental.backtest
    assert stored["model"] == f"trained_model of window {BEFORE} (stored)"
    stored_model = keys.window_folder(incremental.storage, SITE, "trained_model") / BEFORE
    assert stored_model.is_file() and (stored_model.parent / NEWEST).is_file()

    # Without it, the backtest of W fits W-1's model itself.
    kept = tmp_path / "trained_model_before"
    stored_model.rename(kept)
    try:
        result = incremental.model_run(keys.selection(SITE, "recommendation_backtest"))
    finally:
        kept.rename(stored_model)
    fitted = metadata_of(result, "recommendation_backtest")
    assert fitted["model"].startswith(f"fitted here as of window {BEFORE}: ")
    assert "none stored" in fitted["model"]

    # Every figure, the published model compared with, the metrics table and the verdict.
    def figures(metadata: dict) -> dict:
        return {k: v for k, v in metadata.items() if k not in ("model", "backtest_seconds")}

    assert stored["pairs"] > 0 and 0 < stored["HR@10 model"] <= 1
    assert {"MRR@10 model", "NDCG@10 model", "HR@10 last-hour popularity"} <= set(stored)
    # Compared with the model W-1's run published (trained until W's start).
    assert stored["published_model"].startswith("model ") and "HR@10 published model" in stored
    assert figures(fitted) == figures(stored)

    assert len(incremental.approved) == 1
    assert incremental.approved[0][2] == stored["verdict"]
    assert approved_checks(result) == incremental.approved

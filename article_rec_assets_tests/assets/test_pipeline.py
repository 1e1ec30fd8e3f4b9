"""The whole asset graph through Dagster: generated events in the bucket layout in, recommendations
in PostgreSQL out, read back the way the recommendation API reads them."""

import gzip
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetCheckKey,
    AssetRecordsFilter,
    DagsterInstance,
    EnvVar,
    TextMetadataValue,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import serialize_value
from sqlalchemy import select

from article_rec_assets.assets import WINDOW_TAG
from article_rec_assets.assets.sites import site_assets
from article_rec_assets.definitions import all_assets
from article_rec_assets.ingestion.bucket import hour_folder, site_bucket_dir
from article_rec_assets.partitions import SITES, window_key
from article_rec_assets.publishing.api import api_recommendations
from article_rec_assets.publishing.schema import connect, model_table
from article_rec_assets.publishing.swap import publish_recommendations
from article_rec_assets.recommenders.article_model import interaction_clicks
from article_rec_assets.recommenders.lists import recommendation_problems
from article_rec_assets.resources import EventBucket, ServingDatabase
from article_rec_assets.schedules import MODEL_ASSETS
from article_rec_assets.settings.windows import WINDOW_HOURS
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
NEWEST = window_key(WINDOWS[-1])


@dataclass
class Pipeline:
    instance: DagsterInstance
    resources: dict
    storage: Path
    serving_url: str
    catalogue: pd.DataFrame

    def run(self, partition_key: str | None, selection=None, raise_on_error: bool = True, tags=None):
        """`selection` (default: every asset of the site) for the window `partition_key`; model
        assets alone (no partitions) are told the window by the run's tag, as an operator does."""
        selection = selection or keys.site_assets(SITE)
        selected = selection.resolve(all_assets)
        if partition_key and all(k.path[-1] in MODEL_ASSETS for k in selected):
            partition_key, tags = None, {**(tags or {}), WINDOW_TAG: partition_key}
        return materialize(
            all_assets,
            selection=selection,
            partition_key=partition_key,
            tags=tags,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=raise_on_error,
        )

    def run_on_changed_bucket(self, tmp_path: Path, change) -> object:
        """The whole graph for the newest window over a copy of the bucket that `change(folder of
        the site's bucket)` altered; the shared bucket stays as it is."""
        bucket = tmp_path / "data"
        shutil.copytree(self.resources["event_bucket"].root_dir, bucket)
        change(site_bucket_dir(bucket, SITES[SITE]))
        return materialize(
            all_assets,
            selection=keys.site_assets(SITE),
            partition_key=NEWEST,
            resources={**self.resources, "event_bucket": EventBucket(root_dir=str(bucket))},
            instance=self.instance,
            raise_on_error=False,
        )

    def latest_metadata(self, asset: str, partition_key: str) -> dict:
        """A window asset's newest materialization of the window; a model asset's newest (its
        metadata names the window it was trained as of)."""
        partitions = None if asset in MODEL_ASSETS else [str(partition_key)]
        records = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=keys.key(SITE, asset), asset_partitions=partitions), limit=1
        ).records
        assert records, f"{asset} {partition_key} was never materialized"
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}

    def window_tables(self, window, names=("raw_events", "reading_state", "delivered_events")) -> dict:
        """The site's stored tables `names` of `window`, by name."""
        return {name: pd.read_parquet(keys.window_table(self.storage, SITE, name, window)) for name in names}

    def recommendations(self) -> pd.DataFrame:
        return pd.read_parquet(keys.model_table(self.storage, SITE, "article_recommendations"))

    def models(self) -> list[tuple[int, str, str, str]]:
        engine = connect(self.serving_url)
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    model_table.c.id, model_table.c.type, model_table.c.status, model_table.c.site
                ).order_by(model_table.c.id)
            ).all()
        engine.dispose()
        return [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def pipeline(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Every window of two days ingested for one site in one run (as a backfill's range run does),
    then the whole graph for the newest."""
    storage = tmp_path_factory.mktemp("storage")
    catalogue = pd.read_json(demo_data_dir / f"{SITE}/catalogue.jsonl", lines=True, dtype=False)
    with postgres_schema_url() as serving_url, instance_for_test() as instance:
        resources = local_resources(demo_data_dir, storage, serving_url)
        pipe = Pipeline(instance, resources, storage, serving_url, catalogue)
        history = {
            ASSET_PARTITION_RANGE_START_TAG: window_key(WINDOWS[0]),
            ASSET_PARTITION_RANGE_END_TAG: window_key(WINDOWS[-2]),
        }
        pipe.run(
            None, selection=keys.ingestion(SITE) | keys.selection(SITE, "article_catalogue"), tags=history
        )
        pipe.run(NEWEST)
        yield pipe


def test_published_recommendations_are_served_like_the_api_reads_them(pipeline: Pipeline) -> None:
    engine = connect(pipeline.serving_url)
    sources = pipeline.recommendations()
    article_sources = sources.loc[sources["model_type"] == "article", "source_entity_id"].unique()
    assert len(article_sources) > 50
    titles = dict(zip(pipeline.catalogue["external_id"], pipeline.catalogue["title"], strict=True))
    for source in article_sources[:20]:
        recs = api_recommendations(engine, SITE, source, size=10)
        assert len(recs) == 10
        assert source not in [r[0] for r in recs]
        scores = [r[2] for r in recs]
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= s <= 1 for s in scores)
        assert all(titles[ext] == title for ext, title, _ in recs)
    # An article the model does not know gets the popularity fallback.
    fallback = api_recommendations(engine, SITE, "no-such-article", size=5)
    assert len(fallback) == 5 and fallback[0][2] == 1.0
    engine.dispose()


def test_the_publish_shows_what_went_live(pipeline: Pipeline) -> None:
    metadata = pipeline.latest_metadata("published_recommendations", NEWEST)
    assert metadata["status"] == "published"
    table = metadata["what_went_live"]
    recs = pipeline.recommendations()
    most_popular = recs[recs["model_type"] == "popularity"].sort_values("score").iloc[-1]
    titles = dict(zip(pipeline.catalogue["external_id"], pipeline.catalogue["title"], strict=True))
    first_row = table.splitlines()[2]
    assert first_row.startswith(f"| {titles[most_popular['recommended_external_id']]}")
    assert first_row.count("(") >= 5  # five recommendations with their scores


def test_recommendations_carry_the_co_reading_signal(pipeline: Pipeline) -> None:
    """Readers of the generated site stay mostly on one topic; the model must learn that."""
    recs = pipeline.recommendations()
    recs = recs[recs["model_type"] == "article"]
    section = dict(zip(pipeline.catalogue["external_id"], pipeline.catalogue["section"], strict=True))
    same_topic = (
        recs["source_entity_id"].map(section) == recs["recommended_external_id"].map(section)
    ).mean()
    # Six topics: picking at random would give about 1/6.
    assert same_topic > 0.6, same_topic


def test_exactly_one_current_model_per_type_and_site(pipeline: Pipeline) -> None:
    current = [(t, site) for _, t, status, site in pipeline.models() if status == "current"]
    assert sorted(current) == [("article", SITE), ("popularity", SITE)]


def test_training_reads_every_ingested_window(pipeline: Pipeline) -> None:
    model = pipeline.latest_metadata("trained_model", NEWEST)
    assert model["windows_read"] == len(WINDOWS)
    assert model["sessions"] > 100 and model["candidate_articles"] > 50
    # The learned ranker trained (not the blend's fallback), so reruns and backfills walk it; the
    # history's windows were backfilled without examples, so its first retrain built them.
    assert model["ranker"].startswith("LambdaRank")
    assert model["label_windows_stored"] + model["label_windows_built_here"] == 12
    raw = pipeline.latest_metadata("raw_events", NEWEST)
    assert raw["objects_read"] >= WINDOW_HOURS
    quarantined = pd.read_parquet(
        keys.window_table(pipeline.storage, SITE, "quarantined_event_lines", NEWEST)
    )
    assert raw["quarantined_lines"] == len(quarantined)


def test_a_range_run_gives_the_tables_of_window_by_window_runs(pipeline: Pipeline, tmp_path: Path) -> None:
    """The fixture ingested the history in one run over the range; the same windows one run each
    (as the schedule does) give the same tables, row for row, and the same materialization
    metadata per window."""
    storage = tmp_path / "storage"
    resources = stored_in(pipeline.resources, storage)
    with instance_for_test() as instance:
        for window in WINDOWS[:7]:
            result = materialize(
                all_assets,
                selection=keys.ingestion(SITE),
                partition_key=window_key(window),
                resources=resources,
                instance=instance,
            )
            assert result.success
        for window in WINDOWS[:7]:
            for name in ("raw_events", "quarantined_event_lines", "delivered_events", "reading_state"):
                one = pd.read_parquet(keys.window_table(storage, SITE, name, window))
                ranged = pd.read_parquet(keys.window_table(pipeline.storage, SITE, name, window))
                pd.testing.assert_frame_equal(one, ranged, obj=f"{name} {window}")
            one = pd.read_parquet(keys.window_table(storage, SITE, "sessionized_interactions", window))
            ranged = pd.read_parquet(
                keys.window_table(pipeline.storage, SITE, "sessionized_interactions", window)
            )
            pd.testing.assert_frame_equal(one, ranged)
            alone = instance.fetch_materializations(
                AssetRecordsFilter(
                    asset_key=keys.key(SITE, "raw_events"), asset_partitions=[window_key(window)]
                ),
                limit=1,
            ).records[0]
            figures = {k: v.value for k, v in alone.asset_materialization.metadata.items()}
            in_range = pipeline.latest_metadata("raw_events", window_key(window))
            for name in ("dagster/row_count", "lines_read", "quarantined_lines", "state_windows_read"):
                assert figures[name] == in_range[name], (window, name)


def test_rematerializing_a_past_window_reads_only_its_own_hours(pipeline: Pipeline) -> None:
    window = WINDOWS[5]
    key = window_key(window)
    path = keys.window_table(pipeline.storage, SITE, "raw_events", window)
    before = pd.read_parquet(path)
    pipeline.run(key, selection=keys.ingest_only(SITE))
    after = pd.read_parquet(path)
    pd.testing.assert_frame_equal(before, after)
    metadata = pipeline.latest_metadata("raw_events", key)
    assert metadata["objects_read"] >= WINDOW_HOURS
    # The six hours before it come from the earlier windows' stored deliveries, not the bucket.
    assert metadata["context_windows_from_storage"] == 3
    assert metadata["context_windows_from_bucket"] == 0 and metadata["context_objects_read"] == 0
    assert metadata["state_windows_read"] == 5  # every earlier window of the fixture
    assert after["collector_tstamp"].min() >= pd.Timestamp(window)
    assert after["collector_tstamp"].max() < pd.Timestamp(window + timedelta(hours=WINDOW_HOURS))


def test_a_window_is_the_same_whether_its_context_comes_from_storage_or_the_bucket(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    window = WINDOWS[5]
    key = window_key(window)
    tables = pipeline.window_tables(window)
    # The earlier windows' deliveries go missing (as if never ingested): the window reads their
    # hour folders from the bucket again, and gets the same rows.
    moved = []
    for earlier in WINDOWS[2:5]:
        path = keys.window_table(pipeline.storage, SITE, "delivered_events", earlier)
        moved.append((path, tmp_path / path.name))
        path.rename(moved[-1][1])
    try:
        pipeline.run(key, selection=keys.ingest_only(SITE))
    finally:
        for path, kept in moved:
            kept.rename(path)
    metadata = pipeline.latest_metadata("raw_events", key)
    assert metadata["context_windows_from_storage"] == 0
    assert metadata["context_windows_from_bucket"] == 3 and metadata["context_objects_read"] > 0
    for name, after in pipeline.window_tables(window).items():
        pd.testing.assert_frame_equal(after, tables[name], obj=name)


@pytest.mark.parametrize("damage", ["emptied", "without_event_id", "not_parquet"])
def test_earlier_deliveries_unlike_their_materialization_are_read_again_from_the_bucket(
    pipeline: Pipeline, tmp_path: Path, damage: str
) -> None:
    window = WINDOWS[5]
    key = window_key(window)
    tables = pipeline.window_tables(window)
    path = keys.window_table(pipeline.storage, SITE, "delivered_events", WINDOWS[4])
    kept = tmp_path / path.name
    shutil.copy(path, kept)
    stored = pd.read_parquet(path)
    assert len(stored)
    if damage == "not_parquet":  # cut short, as by a full disk
        path.write_bytes(path.read_bytes()[:100])
    else:
        (stored.iloc[:0] if damage == "emptied" else stored.drop(columns="event_id")).to_parquet(
            path, index=False
        )
    try:
        result = pipeline.run(key, selection=keys.ingest_only(SITE))
    finally:
        shutil.copy(kept, path)
    metadata = pipeline.latest_metadata("raw_events", key)
    assert metadata["context_windows_from_storage"] == 2
    assert metadata["context_windows_from_bucket"] == 1 and metadata["context_objects_read"] > 0
    logged = [entry.user_message for entry in pipeline.instance.all_logs(result.run_id)]
    assert any(str(path) in m and "hour folders are read again" in m for m in logged)
    for name, after in pipeline.window_tables(window).items():
        pd.testing.assert_frame_equal(after, tables[name], obj=name)


@pytest.mark.parametrize("damage", ["deleted", "emptied", "altered", "not_parquet"])
def test_a_reading_state_unlike_its_materialization_stops_the_window_naming_its_file(
    pipeline: Pipeline, tmp_path: Path, damage: str
) -> None:
    window = WINDOWS[5]
    key = window_key(window)
    events = keys.window_table(pipeline.storage, SITE, "raw_events", window)
    before = pd.read_parquet(events)
    path = keys.window_table(pipeline.storage, SITE, "reading_state", WINDOWS[4])
    kept = tmp_path / path.name
    shutil.copy(path, kept)
    state = pd.read_parquet(path)
    assert len(state) and (state["kind"] == "session").any()
    if damage == "deleted":
        path.unlink()
    elif damage == "emptied":
        state.iloc[:0].to_parquet(path, index=False)
    elif damage == "not_parquet":
        path.write_bytes(b"not parquet at all")
    else:  # a session made to start an hour later: its late pings would be credited differently
        first = state.index[state["kind"] == "session"][0]
        state.loc[first, "session_start_tstamp"] += pd.Timedelta(hours=1)
        state.to_parquet(path, index=False)
    try:
        result = pipeline.run(key, selection=keys.ingest_only(SITE), raise_on_error=False)
    finally:
        shutil.copy(kept, path)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error)
    assert str(path) in message
    assert (
        "not a readable Parquet file"
        if damage == "not_parquet"
        else f"materialize window {window_key(WINDOWS[4])} again"
    ) in message
    # Not retried (it cannot succeed), and the window's tables are as they were.
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    pd.testing.assert_frame_equal(pd.read_parquet(events), before)


def test_rerunning_the_newest_window_swaps_models(pipeline: Pipeline) -> None:
    before = {t: i for i, t, s, _ in pipeline.models() if s == "current"}
    pipeline.run(NEWEST)
    models = pipeline.models()
    assert sorted((t, s) for _, t, s, _ in models) == [
        ("article", "current"),
        ("article", "stale"),
        ("popularity", "current"),
        ("popularity", "stale"),
    ]
    stale = {t: i for i, t, s, _ in models if s == "stale"}
    assert stale == before


def test_a_backfill_of_an_older_window_keeps_the_newer_model_serving(pipeline: Pipeline) -> None:
    older = window_key(WINDOWS[-2])
    before = pipeline.models()
    pipeline.run(older)
    assert pipeline.models() == before
    assert pipeline.latest_metadata("published_recommendations", older)["skipped"].startswith("not published")
    assert "not compared" in pipeline.latest_metadata("recommendation_backtest", older)["published_model"]


def test_the_backtest_scores_the_model_and_the_baselines_on_the_newest_window(pipeline: Pipeline) -> None:
    metadata = pipeline.latest_metadata("recommendation_backtest", NEWEST)
    assert metadata["pairs"] >= SITES[SITE].evaluation.min_pairs
    assert metadata["window_clicks"] > 0  # the window's own clicks were told apart
    for name in ("model", "last-hour popularity", "successor counts"):
        for metric in ("HR@10", "MRR@10", "NDCG@10", "coverage", "fallback share"):
            assert 0 <= metadata[f"{metric} {name}"] <= 1
    assert metadata["HR@10 model"] > metadata["HR@10 last-hour popularity"]
    # The model against the baseline on one chart; the site's asset plots only its own windows.
    ratio = metadata["HR@10 model / last-hour popularity"]
    assert ratio == round(metadata["HR@10 model"] / metadata["HR@10 last-hour popularity"], 4) and ratio > 1
    assert not [key for key in metadata if key.startswith(tuple(f"{site}:" for site in SITES))]
    assert "| article model |" in metadata["metrics"]
    approved = AssetCheckKey(keys.key(SITE, "recommendation_backtest"), "approved")
    checks = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key([approved])
    assert checks[approved].status.value == "SUCCEEDED"
    # The check's settings are text: Dagster plots numbers, and a setting would plot a flat line.
    evaluation = checks[approved].event.dagster_event.event_specific_data
    settings = {key: evaluation.metadata[key] for key in ("min_pairs", "max_drop_vs_published")}
    assert all(isinstance(value, TextMetadataValue) for value in settings.values()), settings


def test_a_site_that_weighs_in_als_gets_its_neighbours(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = SITES[SITE]
    with_als = site.model_copy(update={"model": site.model.model_copy(update={"als_weight": 0.3})})
    monkeypatch.setitem(SITES, SITE, with_als)  # what the assets look up at run time
    without = pipeline.recommendations()
    # The definitions reloaded with the site's new settings: its interaction matrix joins the graph.
    with_matrix = site_assets(SITE)
    materialize(
        with_matrix,
        selection=keys.selection(
            SITE, "interaction_matrix", "trained_model", "article_recommendations", "recommendation_backtest"
        ),
        tags={WINDOW_TAG: NEWEST},
        resources=pipeline.resources,
        instance=pipeline.instance,
    )
    model = pipeline.latest_metadata("trained_model", NEWEST)
    assert model["als"].endswith(" s") and "articles" in model["als"]  # trained, not "off"
    assert model["als_neighbour_seconds"] > 0
    recs = pipeline.recommendations()
    catalogue = pd.read_parquet(keys.window_table(pipeline.storage, SITE, "article_catalogue", NEWEST))
    assert recommendation_problems(recs, catalogue) == []
    # The neighbours changed lists: some article is now recommended where it was not.
    pairs = ["source_entity_id", "recommended_external_id"]
    assert len(recs[pairs].merge(without[pairs], how="left", indicator=True).query("_merge == 'left_only'"))
    backtest = pipeline.latest_metadata("recommendation_backtest", NEWEST)
    assert "HR@10 model" in backtest, backtest["model"]
    assert backtest["HR@10 model"] > backtest["HR@10 last-hour popularity"]


def test_the_backtest_keeps_a_far_better_published_model_serving(pipeline: Pipeline) -> None:
    """Publish an oracle: for each article, the articles readers of the newest window really read
    next. The new model scores far below it on the backtest, so publishing is blocked."""
    interactions = pd.concat(
        pd.read_parquet(p)
        for p in sorted(keys.window_folder(pipeline.storage, SITE, "sessionized_interactions").glob("*"))
    )
    clicks = interaction_clicks(interactions).sort_values(["reader_id", "session_id", "timestamp"])
    clicks["next"] = clicks.groupby(["reader_id", "session_id"])["article_id"].shift(-1)
    catalogue = pd.read_parquet(keys.window_table(pipeline.storage, SITE, "article_catalogue", NEWEST))
    known = set(catalogue.loc[catalogue["exclude_reason"].isna(), "external_id"])
    pairs = clicks[
        (clicks["timestamp"] >= WINDOWS[-1] - timedelta(minutes=30))
        & clicks["next"].isin(known)
        & (clicks["next"] != clicks["article_id"])
    ].drop_duplicates(["article_id", "next"])
    oracle = pd.DataFrame(
        {
            "model_type": "article",
            "source_entity_id": pairs["article_id"].to_numpy(),
            "recommended_external_id": pairs["next"].to_numpy(),
            "score": 1.0,
            "rank": 1,
        }
    )
    engine = connect(pipeline.serving_url)
    # Trained (as far as the backtest knows) on data up to the window's start: a fair comparison.
    publish_recommendations(engine, SITE, oracle, catalogue, trained_until=WINDOWS[-1])
    engine.dispose()
    before = pipeline.models()
    result = pipeline.run(
        NEWEST,
        selection=keys.selection(SITE, "recommendation_backtest", "published_recommendations"),
        raise_on_error=False,
    )
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "approved"]
    assert [c.passed for c in checks] == [False]
    assert "below the published model" in checks[0].description
    metadata = pipeline.latest_metadata("recommendation_backtest", NEWEST)
    assert metadata["HR@10 published model"] > metadata["HR@10 model"]
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert keys.step(SITE, "published_recommendations") not in started
    assert pipeline.models() == before


def test_a_failing_blocking_check_stops_publishing(pipeline: Pipeline) -> None:
    """Lose the interactions the popularity list is built from: the check fails, nothing is
    published, and the models already current keep serving."""
    before = pipeline.models()
    shutil.rmtree(keys.window_folder(pipeline.storage, SITE, "sessionized_interactions"))
    result = pipeline.run(
        NEWEST,
        selection=keys.selection(
            SITE, "article_popularity", "article_recommendations", "published_recommendations"
        ),
        raise_on_error=False,
    )
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "publishable"]
    assert [c.passed for c in checks] == [False]
    assert "no popularity recommendations" in checks[0].description
    assert not result.success
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {keys.step(SITE, "article_popularity"), keys.step(SITE, "article_recommendations")}
    assert result.asset_materializations_for_node(keys.step(SITE, "published_recommendations")) == []
    assert pipeline.models() == before


def test_a_window_of_mostly_malformed_lines_is_not_published(pipeline: Pipeline, tmp_path: Path) -> None:
    """Above the site's blocking share of unusable lines, nothing downstream of the window runs."""
    before = pipeline.models()
    lines_read = pipeline.latest_metadata("raw_events", NEWEST)["lines_read"]
    garbage = b"\n".join(b"{not json %d" % i for i in range(lines_read // 5))  # ~17 % of the window

    def add_garbage(site_bucket: Path) -> None:
        (site_bucket / hour_folder(WINDOWS[-1]) / "garbage.jsonl.gz").write_bytes(gzip.compress(garbage))

    result = pipeline.run_on_changed_bucket(tmp_path, add_garbage)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["malformed_share_below_warn_threshold"].passed is False
    assert checks["malformed_share_below_block_threshold"].passed is False
    assert isinstance(
        checks["malformed_share_below_block_threshold"].metadata["block_threshold"], TextMetadataValue
    )
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert keys.step(SITE, "published_recommendations") not in started
    assert keys.step(SITE, "sessionized_interactions") not in started
    assert pipeline.models() == before


def test_the_database_password_never_reaches_logs_or_metadata(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving URL comes from the environment through EnvVar; a full publish must not write
    its password into run config, logs or asset metadata."""
    password = "Pa55-w0rd-never-logged"
    user_url = pipeline.serving_url.replace("postgresql://", f"postgresql://root:{password}@", 1)
    monkeypatch.setenv("ARTICLE_REC_TEST_SERVING_URL", user_url)
    resources = {
        **pipeline.resources,
        "serving_database": ServingDatabase(url=EnvVar("ARTICLE_REC_TEST_SERVING_URL")),
    }
    result = materialize(
        all_assets,
        selection=keys.selection(SITE, "published_recommendations"),
        tags={WINDOW_TAG: NEWEST},
        resources=resources,
        instance=pipeline.instance,
    )
    assert result.success
    run = pipeline.instance.get_run_by_id(result.run_id)
    stored = serialize_value(run) + "".join(
        serialize_value(e) for e in pipeline.instance.all_logs(result.run_id)
    )
    assert "published_recommendations" in stored and "model_ids" in stored
    assert password not in stored


def test_an_empty_window_where_traffic_was_expected_is_not_published(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The tracker stopped: the newest window's hour folders are empty, but the same window a day
    earlier had events. The volume check fails, blocking, and nothing is published; freshness
    still passes (the hours just before the window had events)."""
    before = pipeline.models()

    def empty_the_window(site_bucket: Path) -> None:
        for hour in range(WINDOW_HOURS):
            shutil.rmtree(site_bucket / hour_folder(WINDOWS[-1] + timedelta(hours=hour)))

    result = pipeline.run_on_changed_bucket(tmp_path, empty_the_window)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    volume = checks["volume_like_earlier_days"]
    assert volume.passed is False and volume.severity.value == "ERROR"
    assert "no events where" in volume.description
    assert volume.partition == str(NEWEST)  # recorded for the window it judged
    # The hours just before the window still had events: within the 6-hour freshness limit.
    assert checks["events_are_fresh"].passed is True
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert keys.step(SITE, "published_recommendations") not in started
    assert pipeline.models() == before
    # The window is rerun once its events arrive: the check passes again for that window.
    result = materialize(
        all_assets,
        selection=keys.ingest_only(SITE),
        partition_key=NEWEST,
        resources=pipeline.resources,
        instance=pipeline.instance,
    )
    passed = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert passed["volume_like_earlier_days"] is True

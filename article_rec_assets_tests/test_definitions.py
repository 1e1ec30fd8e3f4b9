"""The definitions load, hang together, and take their resources from the environment."""

import pytest
from dagster import AssetKey, Definitions, EnvVar

from article_rec_assets import definitions
from article_rec_assets.definitions import defs, resources_for_environment
from article_rec_assets.io_managers import S3ParquetIOManager, S3PickleIOManager
from article_rec_assets.partitions import SITES, site_key, site_pool, site_prefix, window_partitions
from article_rec_assets.resources import ServingDatabase
from article_rec_assets.schedules import (
    INGEST_WINDOW_JOB,
    LABEL_ASSETS,
    MODEL_ASSETS,
    RECOMMENDATIONS_JOB,
    RETRAIN_JOB,
    SCHEDULE,
    WINDOW_ASSETS,
    site_name,
)
from article_rec_assets.settings import environment

SITE = "demo-tribune"


def key(asset: str) -> AssetKey:
    return site_key(SITE, asset)


def test_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    every = WINDOW_ASSETS + LABEL_ASSETS + MODEL_ASSETS
    expected = {site_key(site, asset) for site in SITES for asset in every}
    assert set(graph.get_all_asset_keys()) == expected
    for site in SITES:
        for asset in every:
            node = graph.get(site_key(site, asset))
            assert node.group_name == site_prefix(site), asset
            # Window assets by the site's own windows; model assets one value per site.
            want = window_partitions(site) if asset not in MODEL_ASSETS else None
            assert node.partitions_def == want, asset
            assert node.pools == {site_pool(site)}, asset
        for job in (RECOMMENDATIONS_JOB, INGEST_WINDOW_JOB, RETRAIN_JOB):
            assert defs.resolve_job_def(site_name(site, job)) is not None
        assert defs.resolve_schedule_def(site_name(site, SCHEDULE)).cron_schedule == "15 */2 * * *"


def test_a_backfill_runs_a_week_of_windows_at_a_time() -> None:
    graph = defs.resolve_asset_graph()
    for asset in WINDOW_ASSETS + LABEL_ASSETS:
        policy = graph.get(key(asset)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 7 * 12, asset


def test_lineage_runs_from_raw_events_to_the_serving_database() -> None:
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {k.path[-1] for k in graph.get(key(name)).parent_keys}

    # A window's state follows from the earlier windows' state (a self-dependency, which orders a
    # backfill's windows); the window's tables have no parent of another output (see the asset).
    assert parents("reading_state") == {"reading_state"}
    assert parents("raw_events") == set() and parents("quarantined_event_lines") == set()
    assert parents("delivered_events") == {"delivered_events"}
    assert parents("sessionized_interactions") == {"raw_events"}
    assert parents("article_catalogue") == {"raw_events"}
    assert parents("ranker_examples") == {"sessionized_interactions", "article_catalogue"}
    # The demo sites' models add no ALS neighbours: no interaction matrix on their path.
    assert parents("trained_model") == {"ranker_examples", "sessionized_interactions", "article_catalogue"}
    assert parents("article_popularity") == {"sessionized_interactions"}
    assert parents("article_recommendations") == {"trained_model", "article_popularity", "article_catalogue"}
    # The backtest evaluates the stored trained_model of the window before.
    assert parents("recommendation_backtest") == {
        "trained_model",
        "sessionized_interactions",
        "article_catalogue",
    }
    assert parents("published_recommendations") == {
        "article_recommendations",
        "article_catalogue",
        "recommendation_backtest",
    }
    # Sites never feed each other.
    for asset in WINDOW_ASSETS + LABEL_ASSETS + MODEL_ASSETS:
        assert {k.path[0] for k in graph.get(key(asset)).parent_keys} <= {site_prefix(SITE)}


def test_a_site_that_turns_als_on_trains_its_model_on_its_interaction_matrix(monkeypatch) -> None:
    from article_rec_assets.assets import training
    from article_rec_assets.schedules import model_assets

    site = SITES[SITE]
    monkeypatch.setitem(
        SITES, SITE, site.model_copy(update={"model": site.model.model_copy(update={"als_weight": 0.5})})
    )
    built = {a.key.path[-1]: a for a in training.build(SITE)}
    assert set(built) == {"interaction_matrix", "ranker_examples", "trained_model"}
    assert key("interaction_matrix") in built["trained_model"].asset_deps[key("trained_model")]
    assert model_assets(SITE)[0] == "interaction_matrix"


def test_blocking_checks_guard_publishing() -> None:
    graph = defs.resolve_asset_graph()
    assert [k.name for k in graph.get(key("article_recommendations")).check_keys] == ["publishable"]
    assert [k.name for k in graph.get(key("recommendation_backtest")).check_keys] == ["approved"]
    assert sorted(k.name for k in graph.get(key("raw_events")).check_keys) == [
        "events_are_fresh",
        "malformed_share_below_block_threshold",
        "malformed_share_below_warn_threshold",
        "volume_like_earlier_days",
    ]
    blocking = {
        spec.name
        for asset in ("article_recommendations", "recommendation_backtest", "raw_events")
        for spec in defs.resolve_assets_def(key(asset)).check_specs
        if spec.blocking
    }
    assert blocking == {
        "publishable",
        "approved",
        "malformed_share_below_block_threshold",
        "volume_like_earlier_days",
    }


def test_every_check_is_recorded_for_the_window_it_judged() -> None:
    """A window asset's checks are partitioned like it; a model asset's judge each materialization
    (its metadata names the window)."""
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        assert spec.partitions_def == graph.get(check_key.asset_key).partitions_def, check_key


def test_embedded_default_without_environment(monkeypatch, tmp_path) -> None:
    for var in (environment.SERVING_DATABASE_URL_VAR, environment.DATA_DIR_VAR, "DAGSTER_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    resources = resources_for_environment()
    assert resources["serving_database"].url == f"sqlite:///{tmp_path}/.demo/serving.db"
    assert resources["event_bucket"].root_dir == str(tmp_path / ".demo" / "data")
    # Asset values go to the storage folder of whichever instance runs them.
    assert resources["table_io_manager"].base_dir is None


def test_secrets_come_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(environment.SERVING_DATABASE_URL_VAR, "postgresql://user:s3cret@db.example/recs")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    resources = resources_for_environment()
    # An EnvVar, not the value: the password never enters run config or the UI.
    assert resources["serving_database"].url == EnvVar(environment.SERVING_DATABASE_URL_VAR)
    loaded = Definitions(assets=definitions.all_assets, resources=resources)
    Definitions.validate_loadable(loaded)


def test_a_serving_database_url_set_but_empty_fails_rather_than_publishing_to_a_local_file(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv(environment.SERVING_DATABASE_URL_VAR, "")
    monkeypatch.chdir(tmp_path)
    resource = resources_for_environment()["serving_database"]
    assert resource.url == EnvVar(environment.SERVING_DATABASE_URL_VAR)
    with pytest.raises(ValueError, match="serving database URL is empty"):
        ServingDatabase(url="").engine()
    assert not (tmp_path / ".demo").exists()


def test_asset_values_go_to_s3_when_a_prefix_is_named_with_no_secret_in_config(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(environment.ASSET_STORAGE_VAR, "s3://recs-values/prod/")
    monkeypatch.setenv(environment.AWS_SECRET_ACCESS_KEY_VAR, "s3cret")
    monkeypatch.setenv(environment.AWS_ACCESS_KEY_ID_VAR, "key-id")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    resources = resources_for_environment()
    tables, values = resources["table_io_manager"], resources["io_manager"]
    assert isinstance(tables, S3ParquetIOManager) and isinstance(values, S3PickleIOManager)
    assert (tables.s3_bucket, tables.s3_prefix, values.s3_bucket, values.s3_prefix) == (
        "recs-values", "prod", "recs-values", "prod",
    )  # fmt: skip
    assert tables.s3_resource.aws_secret_access_key == EnvVar(environment.AWS_SECRET_ACCESS_KEY_VAR)
    Definitions.validate_loadable(Definitions(assets=definitions.all_assets, resources=resources))
    monkeypatch.setenv(environment.ASSET_STORAGE_VAR, "/local/folder")
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        resources_for_environment()

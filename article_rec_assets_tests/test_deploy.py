"""The deployment files hold together: instance configs pass Dagster's schema, the ECS launcher's
config passes dagster-aws's, and no secret is written into a file."""

import re
from pathlib import Path

import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_aws.ecs import EcsRunLauncher

REPO = Path(__file__).resolve().parents[1]


ONE_RUN_PER_SITE = [
    {"key": "dagster/partition/site", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
]


def test_instance_configs_pass_dagsters_schema() -> None:
    for folder in (REPO / "deploy", REPO / "deploy" / "ecs"):
        config, _ = dagster_instance_config(str(folder))
        db = config["storage"]["postgres"]["postgres_db"]
        assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
        assert db["scheme"] == "postgresql+psycopg2"
        assert config["run_coordinator"]["config"]["tag_concurrency_limits"] == ONE_RUN_PER_SITE


def test_the_embedded_default_is_local_and_runs_one_run_per_site() -> None:
    """The top-level dagster.yaml (what `dagster dev` picks up here, and the demo's instance):
    Dagster's local SQLite storage, and the same one-run-per-site queue as production."""
    config, _ = dagster_instance_config(str(REPO))
    assert "storage" not in config and "run_storage" not in config
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_coordinator"]["config"]["tag_concurrency_limits"] == ONE_RUN_PER_SITE
    assert config["telemetry"]["enabled"] is False


def test_ecs_run_launcher_config_passes_its_schema() -> None:
    config = yaml.safe_load((REPO / "deploy" / "ecs" / "dagster.yaml").read_text())["run_launcher"]
    assert (config["module"], config["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = process_config(EcsRunLauncher.config_type(), config["config"])
    assert result.success, result.errors
    broken = {**config["config"], "run_resources": {"cpu": 1024}}  # the schema wants strings
    assert not process_config(EcsRunLauncher.config_type(), broken).success


def test_compose_layout_and_secrets_come_from_the_environment() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {"postgres", "code_location", "webserver", "daemon"}
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|DATABASE_URL|ACCESS_KEY", key):
                assert str(value).startswith("${"), f"{name}.{key} must come from the environment"
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "code_location"


def test_dockerfile_is_slim_non_root_and_has_openmp() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "libgomp1" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\s*=", dockerfile)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".demo", ".git"} <= set(ignored)

"""The deployment files hold together: instance configs pass Dagster's schema, the ECS launcher's
config passes dagster-aws's, and no secret is written into a file."""

import re
from pathlib import Path

import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import RunLauncher
from dagster._serdes import ConfigurableClassData
from dagster_aws.ecs import EcsRunLauncher
from dagster_k8s import K8sRunLauncher

from article_rec_assets.container_run_launcher import SiteContainerRunLauncher
from article_rec_assets.run_launcher import LocalWorkerRunLauncher

REPO = Path(__file__).resolve().parents[1]


# Every asset of a site is in the site's pool; a run holds a place in its pools while it runs.
ONE_RUN_PER_SITE = {"granularity": "run", "default_limit": 1}


def test_instance_configs_pass_dagsters_schema() -> None:
    for folder in (REPO / "deploy", REPO / "deploy" / "ecs", REPO / "deploy" / "docker"):
        config, _ = dagster_instance_config(str(folder))
        db = config["storage"]["postgres"]["postgres_db"]
        assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
        assert db["scheme"] == "postgresql+psycopg2"
        assert config["concurrency"]["pools"] == ONE_RUN_PER_SITE


def test_the_embedded_default_is_local_and_runs_one_run_per_site() -> None:
    """The top-level dagster.yaml (what `dagster dev` picks up here, and the demo's instance):
    Dagster's local SQLite storage, and the same one-run-per-site queue as production."""
    config, _ = dagster_instance_config(str(REPO))
    assert "storage" not in config and "run_storage" not in config
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"] == ONE_RUN_PER_SITE
    assert config["telemetry"]["enabled"] is False


def test_the_default_launcher_instances_use_the_launcher_that_checks_its_workers() -> None:
    """The embedded default and the production file launch with Dagster's default launcher plus a
    worker health check (article_rec_assets/run_launcher.py), loaded as the daemon loads it."""
    for folder in (REPO, REPO / "deploy"):
        config, _ = dagster_instance_config(str(folder))
        launcher = config["run_launcher"]
        assert launcher == {"module": "article_rec_assets.run_launcher", "class": "LocalWorkerRunLauncher"}
        loaded = ConfigurableClassData(launcher["module"], launcher["class"], "{}").rehydrate(RunLauncher)
        assert type(loaded) is LocalWorkerRunLauncher and loaded.supports_check_run_worker_health
        assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["poll_interval_seconds"] <= 60


def test_the_container_instance_differs_from_the_production_one_in_where_runs_go_only() -> None:
    """deploy/docker: every run a container (dagster-docker, through our launcher), run logs in S3
    (no run shares a disk with the webserver); the rest as deploy/dagster.yaml."""
    production = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    containers = yaml.safe_load((REPO / "deploy" / "docker" / "dagster.yaml").read_text())
    differing = {
        key for key in production.keys() | containers.keys() if production.get(key) != containers.get(key)
    }
    assert differing == {"run_launcher", "compute_logs"}
    launcher = containers["run_launcher"]
    assert launcher["class"] == "SiteContainerRunLauncher"
    assert process_config(SiteContainerRunLauncher.config_type(), launcher["config"]).success
    # Names of the daemon's variables only: no value, hence no secret, in the file.
    assert all("=" not in name for name in launcher["config"]["env_vars"])
    loaded = ConfigurableClassData(launcher["module"], launcher["class"], yaml.safe_dump(launcher["config"]))
    assert type(loaded.rehydrate(RunLauncher)) is SiteContainerRunLauncher
    workspace = yaml.safe_load((REPO / "deploy" / "docker" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "127.0.0.1"


def test_ecs_run_launcher_config_passes_its_schema() -> None:
    config = yaml.safe_load((REPO / "deploy" / "ecs" / "dagster.yaml").read_text())["run_launcher"]
    assert (config["module"], config["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = process_config(EcsRunLauncher.config_type(), config["config"])
    assert result.success, result.errors
    broken = {**config["config"], "run_resources": {"cpu": 1024}}  # the schema wants strings
    assert not process_config(EcsRunLauncher.config_type(), broken).success


def test_compose_layout_and_secrets_come_from_the_environment() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {
        "postgres",
        "code_location",
        "webserver",
        "webserver_readonly",
        "daemon",
    }
    # No login in Dagster's webserver: both are published on the host's loopback only.
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"
    assert "--read-only" in compose["services"]["webserver_readonly"]["command"]
    assert "--read-only" not in compose["services"]["webserver"]["command"]
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


def test_the_kubernetes_instance_passes_dagster_k8s_schema(monkeypatch) -> None:
    # The chart sets these in every pod; the schema reads `env:` values when it checks them.
    for name in ("DAGSTER_K8S_PIPELINE_RUN_NAMESPACE", "DAGSTER_K8S_INSTANCE_CONFIG_MAP", "DAGSTER_HOME"):
        monkeypatch.setenv(name, "set-by-the-chart")
    monkeypatch.setenv("DAGSTER_K8S_PG_PASSWORD_SECRET", "dagster-postgresql-secret")
    config, _ = dagster_instance_config(str(REPO / "deploy" / "k8s"))
    assert config["concurrency"]["pools"] == ONE_RUN_PER_SITE
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["max_resume_run_attempts"] == 0
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    broken = {**launcher["config"], "env_secrets": "article-rec-secrets"}  # a list, in the schema
    assert not process_config(K8sRunLauncher.config_type(), broken).success


def test_the_helm_values_say_what_the_instance_says() -> None:
    """The chart's values and the instance file agree where they overlap: one run per site, run
    monitoring, the user deployment serving this package, no secret in the values."""
    values = yaml.safe_load((REPO / "deploy" / "k8s" / "values.yaml").read_text())
    instance = yaml.safe_load((REPO / "deploy" / "k8s" / "dagster.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "article_rec_assets.definitions"]
    assert deployment["port"] == 4000
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["ARTICLE_REC_ASSET_STORAGE"].startswith("s3://")  # pods share no disk
    pools = values["concurrency"]["pools"]
    pools = {"granularity": pools["granularity"], "default_limit": pools["defaultLimit"]}
    assert pools == instance["concurrency"]["pools"] == ONE_RUN_PER_SITE
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["maxRuntimeSeconds"] == instance["run_monitoring"]["max_runtime_seconds"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    text = (REPO / "deploy" / "k8s" / "values.yaml").read_text()
    assert not re.search(r"(?i)(password|secret_access_key)\s*:\s*[^<\s{]", text)

"""The image is built and run: `deploy/build-image.sh` builds the repository's Dockerfile with
podman on a Debian bookworm base made here (`deploy/make-bookworm-base.sh`; Docker Hub cannot be
reached from this machine) from a wheelhouse made on the host, then the container validates the
definitions on the production settings (its baked-in PostgreSQL instance, S3 storage) and its
code server answers a gRPC health check.

Podman keeps its storage (and the base image, made once) under the system's temporary folder, so
later runs reuse the base and the build's layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from article_rec_assets_tests.operating import postgres_database

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "article-rec-image"
BASE = "localhost/bookworm-python:3.11"
IMAGE = "localhost/article-rec-assets:test"
# Podman's defaults that this sandbox refuses (see the deploy guide): ulimits it may not raise,
# crun on hybrid cgroups, journald events.
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@pytest.fixture(scope="module")
def podman() -> Iterator[list[str]]:
    missing = [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        message = f"{missing} not installed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(conf))
        patch.setenv("PODMAN_ROOT", str(CACHE / "podman"))
        yield [
            "podman",
            "--root",
            str(CACHE / "podman" / "storage"),
            "--runroot",
            str(CACHE / "podman" / "run"),
        ]


def run(command: list[str], timeout: int = 900, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{command[:3]}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def image(podman: list[str]) -> dict:
    if subprocess.run([*podman, "image", "exists", BASE]).returncode != 0:
        run([str(REPO / "deploy" / "make-bookworm-base.sh"), BASE])
    wheels = CACHE / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    # Built from a copy: setuptools would leave its build/ folder in the working tree.
    source = CACHE / "source"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", ".demo", "build", "*.egg-info")
    )
    run([sys.executable, "-m", "pip", "wheel", "-q", str(source), "setuptools", "wheel", "-w", str(wheels)])
    started = time.monotonic()
    env = {**os.environ, "BASE_IMAGE": BASE, "WHEELHOUSE": str(wheels)}
    run([str(REPO / "deploy" / "build-image.sh"), IMAGE], env=env)
    seconds = time.monotonic() - started
    size = int(run([*podman, "image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout.strip())
    print(f"image {IMAGE}: {size / 1e9:.2f} GB, built in {seconds:.0f} s")
    return {"size": size, "seconds": seconds}


def test_the_image_validates_the_definitions_on_the_production_settings(podman, image) -> None:
    assert image["size"] > 100e6  # a real Python with the whole stack in it
    with postgres_database() as database:
        settings = {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USERNAME": "root",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": database,
            "SERVING_DATABASE_URL": f"postgresql://root@127.0.0.1:5432/{database}",
            "ARTICLE_REC_EVENTS_SOURCE": "s3",
            "ARTICLE_REC_ASSET_STORAGE": "s3://asset-values/prod",
        }
        flags = [arg for name, value in settings.items() for arg in ("-e", f"{name}={value}")]
        done = run(
            [*podman, "run", "--rm", "--network", "host", *flags, IMAGE,
             "dagster", "definitions", "validate", "-m", "article_rec_assets.definitions"],
            timeout=300,
        )  # fmt: skip
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_the_code_server_in_the_image_answers_a_health_check(podman, image) -> None:
    container = run(
        [*podman, "run", "-d", "--network", "none", "-e", "DAGSTER_HOME=/tmp", IMAGE]
    ).stdout.strip()
    try:
        for _ in range(60):
            check = subprocess.run(
                [*podman, "exec", container, "dagster", "api", "grpc-health-check", "-p", "4000"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if check.returncode == 0:
                break
            time.sleep(1)
        assert check.returncode == 0, check.stderr[-2000:]
        user = run([*podman, "exec", container, "id", "-u"]).stdout.strip()
        assert user == "10001"  # not root
    finally:
        subprocess.run([*podman, "rm", "-f", container], capture_output=True, timeout=120)

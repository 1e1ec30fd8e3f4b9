"""The image (built by the `image` fixture, containers.py) validates the definitions on the
production settings (its baked-in PostgreSQL instance, S3 storage) and its code server answers a
gRPC health check."""

from __future__ import annotations

import subprocess
import time

import pytest

from article_rec_assets_tests.support.containers import IMAGE, run
from article_rec_assets_tests.support.operating import postgres_database

pytestmark = [pytest.mark.image, pytest.mark.postgres]

FIND_DEMO = (
    "import importlib.util, shutil; "
    "print(importlib.util.find_spec('article_rec_demo'), "
    "shutil.which('article-rec-demo'), shutil.which('article-rec-generate'))"
)


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
        # The product alone: neither the demo's generator nor its commands are in the image.
        found = run([*podman, "exec", container, "python", "-c", FIND_DEMO]).stdout.split()
        assert found == ["None", "None", "None"], found
    finally:
        subprocess.run([*podman, "rm", "-f", container], capture_output=True, timeout=120)

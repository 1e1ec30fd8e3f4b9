"""The image, built once per test session, and podman to run it: `deploy/build-image.sh` builds the
repository's Dockerfile with podman on a Debian bookworm base made here
(`deploy/make-bookworm-base.sh`; Docker Hub cannot be reached from this machine) from a wheelhouse
made on the host, with the `docker` extra (its runs' containers load the instance, whose run
launcher is dagster-docker's).

Podman keeps its storage (and the base image, made once) under the system's temporary folder, so
later runs reuse the base and the build's layers. conftest.py registers these fixtures."""

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

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
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
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            f"{source}[docker]",
            "setuptools",
            "wheel",
            "-w",
            str(wheels),
        ]
    )
    started = time.monotonic()
    env = {**os.environ, "BASE_IMAGE": BASE, "WHEELHOUSE": str(wheels), "EXTRAS": "docker"}
    run([str(REPO / "deploy" / "build-image.sh"), IMAGE], env=env)
    seconds = time.monotonic() - started
    size = int(run([*podman, "image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout.strip())
    print(f"image {IMAGE}: {size / 1e9:.2f} GB, built in {seconds:.0f} s")
    return {"size": size, "seconds": seconds}


@pytest.fixture(scope="session")
def docker_api(podman: list[str]) -> Iterator[str]:
    """podman's Docker Engine API on a unix socket of its own (what dagster-docker's launcher and
    the Docker SDK talk to): its DOCKER_HOST URL."""
    socket = Path(tempfile.mkdtemp(prefix="article-rec-podman-")) / "podman.sock"
    url = f"unix://{socket}"
    service = subprocess.Popen(
        [*podman, "system", "service", "--time=0", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            if socket.exists() or service.poll() is not None:
                break
            time.sleep(0.1)
        assert socket.exists(), f"podman system service did not start: {service.stderr.read()[-2000:]}"
        yield url
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
        shutil.rmtree(socket.parent, ignore_errors=True)

"""Shared fixtures: a PostgreSQL schema of our own, and a generated demo clickstream."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from article_rec_assets.generator.clickstream import generate_site
from article_rec_assets.sites import load_sites

POSTGRES_DSN = os.environ.get("ARTICLE_REC_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
# The generated data ends here; tests use windows before it.
DEMO_END = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
DEMO_DAYS = 2


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must run the PostgreSQL tests)")
        pytest.skip(f"{message}; start it to run the serving-database tests")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL into a fresh schema of the `test` database, dropped afterwards.

    Every table the code creates lands in that schema through the connection's search_path.
    """
    _postgres_or_skip()
    schema = f"article_rec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of generated clickstream and catalogue for every demo site."""
    data_dir = tmp_path_factory.mktemp("demo_data")
    for site in load_sites().values():
        generate_site(site, data_dir, DEMO_END - timedelta(days=DEMO_DAYS), DEMO_END)
    return data_dir

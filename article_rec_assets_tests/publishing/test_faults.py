"""Faults at the serving database, on PostgreSQL and SQLite: a lock held by someone else, and a
connection cut between the swaps of the two model types. Either way the models that served before
serve after, together, and the next publish goes through."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import DBAPIError

from article_rec_assets.publishing.api import api_recommendations, current_model
from article_rec_assets.publishing.schema import connect, model_table
from article_rec_assets.publishing.swap import publish_recommendations
from article_rec_assets_tests.publishing.test_publishing import catalogue, recommendations, statuses

SITE = "fault-site"
LOCK_TIMEOUT = 1.0


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'serving.db'}"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = connect(url, statement_timeout_seconds=30, lock_timeout_seconds=LOCK_TIMEOUT)
    yield engine
    engine.dispose()


def serving(engine: Engine) -> dict[str, object]:
    """What the API would answer now: the article list of a0 and the popularity list."""
    return {
        "a0": api_recommendations(engine, SITE, "a0"),
        "popularity": api_recommendations(engine, SITE, "default", model_type="popularity"),
        "models": (current_model(engine, SITE).model_id, current_model(engine, SITE, "popularity").model_id),
    }


def test_the_timeouts_reach_every_session(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "1s"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "30s"
            conn.rollback()  # a rolled-back transaction keeps them: they are session options
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "1s"
        else:
            assert conn.connection.driver_connection.execute("PRAGMA busy_timeout").fetchone()[0] == 1000


def test_a_held_lock_fails_the_publish_within_the_lock_timeout_and_the_old_models_keep_serving(
    engine: Engine, url: str
) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    before = serving(engine)
    holder = connect(url)
    try:
        with holder.connect() as held:
            # Another writer sits on the model table (a migration, a stuck session).
            if holder.dialect.name == "postgresql":
                held.execute(text("LOCK TABLE model IN EXCLUSIVE MODE"))
            else:
                held.exec_driver_sql("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(DBAPIError):
                publish_recommendations(engine, SITE, recommendations(offset=0.1), catalogue())
            waited = time.monotonic() - started
            held.rollback()
    finally:
        holder.dispose()
    assert LOCK_TIMEOUT * 0.9 <= waited < LOCK_TIMEOUT * 10, waited
    assert serving(engine) == before
    # The next publish goes through and sweeps what the failed one left.
    publish_recommendations(engine, SITE, recommendations(offset=0.2), catalogue())
    assert api_recommendations(engine, SITE, "a0")[0][2] == pytest.approx(0.7)
    assert [s for s in statuses(engine) if s[1] in ("pending", "failed")] == []


def test_a_connection_cut_between_the_two_swaps_leaves_both_old_models_serving(
    engine: Engine, url: str
) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    before = serving(engine)
    made_current: list[str] = []

    def cut_at_the_second_swap(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("UPDATE model SET status") and "popularity" in str(parameters):
            # The popularity slot's first update: the new article model is current by now.
            made_current.append(statement)
            if len(made_current) == 1:
                if conn.dialect.name == "postgresql":
                    pid = conn.connection.driver_connection.info.backend_pid
                    with connect(url).begin() as other:
                        other.execute(select(text(f"pg_terminate_backend({int(pid)})")))
                else:
                    raise ConnectionResetError("the connection was cut")

    event.listen(engine, "before_cursor_execute", cut_at_the_second_swap)
    try:
        with pytest.raises((DBAPIError, ConnectionResetError)):
            publish_recommendations(engine, SITE, recommendations(offset=0.1), catalogue())
    finally:
        event.remove(engine, "before_cursor_execute", cut_at_the_second_swap)
    assert len(made_current) == 1
    assert serving(engine) == before  # neither the new article model nor the new popularity one
    with engine.connect() as conn:
        current = conn.execute(
            select(model_table.c.type).where(
                (model_table.c.site == SITE) & (model_table.c.status == "current")
            )
        ).all()
    assert sorted(row[0] for row in current) == ["article", "popularity"]
    publish_recommendations(engine, SITE, recommendations(offset=0.2), catalogue())
    assert api_recommendations(engine, SITE, "a0")[0][2] == pytest.approx(0.7)

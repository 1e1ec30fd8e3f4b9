"""Publishing against both serving databases: PostgreSQL (the real one) and SQLite (embedded)."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, inspect, select

from article_rec_assets.publishing.api import api_recommendations, current_model
from article_rec_assets.publishing.schema import (
    article_table,
    connect,
    model_table,
    model_training_table,
    recommendation_table,
)
from article_rec_assets.publishing.swap import publish_recommendations

SITE = "test-site"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'serving.db'}"
    engine = connect(url)
    yield engine
    engine.dispose()


def catalogue(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "external_id": pd.array([f"a{i}" for i in range(n)], dtype="string"),
            "path": pd.array([f"/article/{i}/slug/" for i in range(n)], dtype="string"),
            "title": pd.array([f"Title {i}" for i in range(n)], dtype="string"),
            "published_at": pd.to_datetime([f"2026-03-0{i + 1}T12:00:00Z" for i in range(n)]),
            "exclude_reason": pd.array([pd.NA] * n, dtype="string"),
        }
    )


def recommendations(offset: float = 0.0) -> pd.DataFrame:
    """a0 -> a1 (0.9), a2 (0.5); a1 -> a0 (0.8); popularity: a3, a0."""
    rows = [
        ("article", "a0", "a1", 0.9 - offset),
        ("article", "a0", "a2", 0.5 - offset),
        ("article", "a1", "a0", 0.8 - offset),
        ("popularity", "default", "a3", 1.0),
        ("popularity", "default", "a0", 0.25),
    ]
    frame = pd.DataFrame(rows, columns=["model_type", "source_entity_id", "recommended_external_id", "score"])
    frame["rank"] = frame.groupby(["model_type", "source_entity_id"]).cumcount() + 1
    return frame


def statuses(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(model_table.c.type, model_table.c.status).order_by(model_table.c.id)).all()
    return [tuple(r) for r in rows]


def test_creates_the_contract_tables(engine: Engine) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    inspector = inspect(engine)
    assert {"article", "model", "recommendation", "path"} <= set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("recommendation")}
    assert columns == {
        "id",
        "model_id",
        "source_entity_id",
        "recommended_article_id",
        "score",
        "created_at",
        "updated_at",
    }
    uniques = [u["column_names"] for u in inspector.get_unique_constraints("article")]
    assert ["site", "external_id"] in uniques


def test_api_reads_what_was_published(engine: Engine) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    assert api_recommendations(engine, SITE, "a0") == [("a1", "Title 1", 0.9), ("a2", "Title 2", 0.5)]
    assert api_recommendations(engine, SITE, "a0", size=1) == [("a1", "Title 1", 0.9)]
    # An article without recommendations falls back to the popularity model.
    assert api_recommendations(engine, SITE, "a3") == [("a3", "Title 3", 1.0), ("a0", "Title 0", 0.25)]
    # Another site sees nothing of ours.
    assert api_recommendations(engine, "other-site", "a0") == []


def test_publishing_twice_leaves_one_current_model_per_type(engine: Engine) -> None:
    first = publish_recommendations(engine, SITE, recommendations(), catalogue())
    second = publish_recommendations(engine, SITE, recommendations(offset=0.1), catalogue())
    assert statuses(engine) == [
        ("article", "stale"),
        ("popularity", "stale"),
        ("article", "current"),
        ("popularity", "current"),
    ]
    assert second.model_ids["article"] != first.model_ids["article"]
    assert api_recommendations(engine, SITE, "a0")[0] == ("a1", "Title 1", 0.8)
    # Articles are upserted, not duplicated.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(article_table)).scalar_one() == 4


def test_a_republish_rewrites_only_the_articles_that_changed(engine: Engine) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    with engine.connect() as conn:
        before = dict(conn.execute(select(article_table.c.external_id, article_table.c.updated_at)).all())
    changed = catalogue()
    changed.loc[1, "title"] = "Title 1, corrected"
    changed.loc[2, "published_at"] = pd.Timestamp("2026-03-09T08:00:00Z")
    publish_recommendations(engine, SITE, recommendations(offset=0.1), changed)
    assert api_recommendations(engine, SITE, "a0")[0] == ("a1", "Title 1, corrected", 0.8)
    with engine.connect() as conn:
        after = {
            row.external_id: row
            for row in conn.execute(
                select(article_table.c.external_id, article_table.c.updated_at, article_table.c.published_at)
            )
        }
    assert pd.Timestamp(after["a2"].published_at).tz_localize(None) == pd.Timestamp("2026-03-09T08:00:00")
    # The unchanged articles are not written again; the changed ones are (SQLite's now() has
    # whole seconds: two publishes within one second leave the same time).
    if engine.dialect.name == "postgresql":
        assert {key for key in before if after[key].updated_at != before[key]} == {"a1", "a2"}


def test_old_stale_models_are_deleted_with_their_recommendations(engine: Engine) -> None:
    for i in range(5):
        result = publish_recommendations(
            engine, SITE, recommendations(offset=i / 100), catalogue(), keep_stale=2
        )
    assert result.stale_models_deleted == 2  # one per type in the last publish
    assert [s for t, s in statuses(engine) if t == "article"] == ["stale", "stale", "current"]
    with engine.connect() as conn:
        model_ids = set(conn.execute(select(model_table.c.id)).scalars())
        rec_model_ids = set(conn.execute(select(recommendation_table.c.model_id)).scalars())
    assert rec_model_ids == model_ids
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(recommendation_table)).scalar_one() == 3 * 5


def test_the_current_model_is_read_back_with_the_end_of_its_training_data(engine: Engine) -> None:
    assert current_model(engine, SITE) is None
    publish_recommendations(engine, SITE, recommendations(), catalogue())  # no training end known
    first = current_model(engine, SITE)
    assert first is not None and first.trained_until is None
    until = pd.Timestamp("2026-03-04 10:00", tz="UTC")
    result = publish_recommendations(
        engine, SITE, recommendations(offset=0.1), catalogue(), trained_until=until
    )
    current = current_model(engine, SITE)
    assert current.model_id == result.model_ids["article"] and current.trained_until == until
    assert sorted(current.rows.itertuples(index=False, name=None)) == [
        ("a0", "a1", 0.8),
        ("a0", "a2", 0.4),
        ("a1", "a0", 0.7),
    ]
    popular = current_model(engine, SITE, "popularity")
    assert sorted(popular.rows["recommended_external_id"]) == ["a0", "a3"]
    # Deleting old models deletes their training records with them.
    for i in range(4):
        publish_recommendations(
            engine, SITE, recommendations(offset=i / 100), catalogue(), trained_until=until
        )
    with engine.connect() as conn:
        kept = set(conn.execute(select(model_training_table.c.model_id)).scalars())
        models = set(conn.execute(select(model_table.c.id)).scalars())
    assert kept <= models


def test_a_failed_publish_keeps_the_previous_model_serving(engine: Engine) -> None:
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    broken = recommendations()
    broken.loc[0, "recommended_external_id"] = "not-in-catalogue"
    with pytest.raises(KeyError):
        publish_recommendations(engine, SITE, broken, catalogue())
    assert ("article", "failed") in statuses(engine)
    assert api_recommendations(engine, SITE, "a0")[0] == ("a1", "Title 1", 0.9)
    # The next good publish clears the debris of the failed one.
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    assert "failed" not in {s for _, s in statuses(engine)}


def test_hostile_text_round_trips(engine: Engine) -> None:
    hostile_site = "x'; DROP TABLE model; --"
    cat = catalogue()
    cat.loc[1, "title"] = "Quotes ' \" ; backslash \\ tab\t newline\n emoji 📰 <b>&amp;</b>"
    publish_recommendations(engine, hostile_site, recommendations(), cat)
    assert api_recommendations(engine, hostile_site, "a0")[0] == ("a1", cat.loc[1, "title"], 0.9)


# The tables as the API's own (peewee) migrations create them, with their own index names.
OLD_MIGRATIONS = """
CREATE TABLE article (id SERIAL PRIMARY KEY, external_id TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  path TEXT NOT NULL DEFAULT '', site TEXT NOT NULL, published_at TIMESTAMPTZ NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE UNIQUE INDEX article_site_external_id ON article (site, external_id);
CREATE TABLE model (id SERIAL PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
  site TEXT NOT NULL DEFAULT '', created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX model_type_status_site_idx ON model (type, status, site);
CREATE SEQUENCE recommendation_id_seq;
CREATE TABLE recommendation (id BIGINT PRIMARY KEY DEFAULT nextval('recommendation_id_seq'),
  model_id INT NOT NULL REFERENCES model ON DELETE CASCADE, source_entity_id TEXT NOT NULL,
  recommended_article_id INT NOT NULL REFERENCES article(id) ON DELETE CASCADE,
  score DECIMAL(7,6) NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE UNIQUE INDEX recommendation_model_source_article
  ON recommendation (model_id, source_entity_id, recommended_article_id);
CREATE TABLE path (id SERIAL PRIMARY KEY, path TEXT NOT NULL, site TEXT NOT NULL DEFAULT '',
  external_id TEXT NULL, exclude_reason TEXT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
INSERT INTO article (external_id, title, path, site) VALUES ('kept', 'A user row', '/kept/', 'other-site');
"""
SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name IN ('article', 'model', 'recommendation', 'path')
ORDER BY table_name, column_name
"""
INDEX_SNAPSHOT = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename IN ('article', 'model', 'recommendation', 'path') ORDER BY 1
"""


def test_a_database_made_by_the_old_migrations_is_used_as_it_is(postgres_url: str) -> None:
    """The API's four tables are left exactly as they are (our own `path_attempt` is added beside)."""
    engine = connect(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_MIGRATIONS)
    with engine.connect() as conn:
        before = (conn.exec_driver_sql(SCHEMA_SNAPSHOT).all(), conn.exec_driver_sql(INDEX_SNAPSHOT).all())
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    publish_recommendations(engine, SITE, recommendations(), catalogue())
    with engine.connect() as conn:
        after = (conn.exec_driver_sql(SCHEMA_SNAPSHOT).all(), conn.exec_driver_sql(INDEX_SNAPSHOT).all())
        kept = conn.exec_driver_sql("SELECT title FROM article WHERE external_id = 'kept'").scalar_one()
    assert after == before
    assert kept == "A user row"
    assert api_recommendations(engine, SITE, "a0")[0] == ("a1", "Title 1", 0.9)
    engine.dispose()

"""What publishing promises the API, proven against the real PostgreSQL: readers never see a
half-written model nor a moment without one, a killed publish leaves the old model serving, and
hostile text round-trips."""

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import Engine, func, inspect, select, text

from article_rec_assets.publishing.api import api_recommendations
from article_rec_assets.publishing.schema import (
    connect,
    ensure_schema,
    metadata,
    model_table,
    recommendation_table,
)
from article_rec_assets.publishing.swap import publish_recommendations

SITE = "concurrency-site"
SOURCES = 20
PER_SOURCE = 5


def catalogue(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "external_id": pd.array([f"a{i}" for i in range(n)], dtype="string"),
            "path": pd.array([f"/article/{i}/slug/" for i in range(n)], dtype="string"),
            "title": pd.array([f"Title {i}" for i in range(n)], dtype="string"),
            "published_at": pd.Timestamp("2026-03-01T12:00:00Z"),
            "exclude_reason": pd.array([pd.NA] * n, dtype="string"),
        }
    )


def recommendations(generation: int, sources: int = SOURCES, per_source: int = PER_SOURCE) -> pd.DataFrame:
    """Every row of generation g scores g / 1000 (+ a rank step), so an answer tells its model."""
    rows = []
    for s in range(sources):
        for r in range(per_source):
            target = (s + r + 1) % (sources + per_source)
            rows.append(
                ("article", f"a{s}", f"a{target}", round(generation / 1000 + (per_source - r) / 1e6, 6))
            )
    for r in range(per_source):
        rows.append(("popularity", "default", f"a{r}", round(generation / 1000 + (per_source - r) / 1e6, 6)))
    return pd.DataFrame(rows, columns=["model_type", "source_entity_id", "recommended_external_id", "score"])


API_QUERY = text(
    """
    SELECT r.model_id, a.external_id, r.score
    FROM recommendation r
    JOIN model m ON m.id = r.model_id
    JOIN article a ON a.id = r.recommended_article_id
    WHERE m.type = :type AND m.status = 'current' AND a.site = :site AND r.source_entity_id = :source
    ORDER BY r.score DESC
    LIMIT 50
    """
)


@pytest.fixture
def engine(postgres_url: str) -> Engine:
    engine = connect(postgres_url)
    yield engine
    engine.dispose()


def test_readers_always_see_exactly_one_complete_model(engine: Engine) -> None:
    cat = catalogue(SOURCES + PER_SOURCE)
    publish_recommendations(engine, SITE, recommendations(1), cat)
    stop = threading.Event()
    answers: list[int] = []
    problems: list[str] = []

    def read(source: str, model_type: str) -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                rows = conn.execute(API_QUERY, {"type": model_type, "site": SITE, "source": source}).all()
                conn.commit()  # a new snapshot for the next query, as the API's pooled reads get
                answers.append(len(rows))
                if len(rows) != PER_SOURCE:
                    problems.append(f"{model_type} {source}: {len(rows)} rows")
                elif len({model_id for model_id, _, _ in rows}) != 1:
                    problems.append(f"{model_type} {source}: rows of several models")
                elif len({int(score * 1000) for _, _, score in rows}) != 1:
                    problems.append(f"{model_type} {source}: rows of several generations")

    readers = [
        threading.Thread(target=read, args=("a3", "article")),
        threading.Thread(target=read, args=("a17", "article")),
        threading.Thread(target=read, args=("default", "popularity")),
    ]
    for thread in readers:
        thread.start()
    try:
        for generation in range(2, 202):  # 200 publishes while the readers read
            publish_recommendations(engine, SITE, recommendations(generation), cat, keep_stale=2)
    finally:
        stop.set()
        for thread in readers:
            thread.join()

    assert problems == []
    assert len(answers) > 200, "the readers should have read throughout the publishes"
    with engine.connect() as conn:
        statuses = conn.execute(
            select(model_table.c.type, model_table.c.status, func.count())
            .group_by(model_table.c.type, model_table.c.status)
            .order_by(model_table.c.type, model_table.c.status)
        ).all()
    assert [tuple(r) for r in statuses] == [
        ("article", "current", 1),
        ("article", "stale", 2),
        ("popularity", "current", 1),
        ("popularity", "stale", 2),
    ]
    assert api_recommendations(engine, SITE, "a3", size=1)[0][2] == pytest.approx(0.201005)


CRASHING_PUBLISH = """
import sys, pandas as pd
from article_rec_assets.publishing.schema import connect
from article_rec_assets.publishing.swap import publish_recommendations
from article_rec_assets_tests.publishing.test_publishing_guarantees import catalogue, recommendations
recs = recommendations(7, sources=4000, per_source=50)
publish_recommendations(connect(sys.argv[1]), "crash-site", recs, catalogue(4050))
"""


def test_a_publish_killed_mid_copy_leaves_the_previous_model_serving(
    engine: Engine, postgres_url: str
) -> None:
    cat = catalogue(4050)
    first = publish_recommendations(engine, "crash-site", recommendations(1), cat)
    before = api_recommendations(engine, "crash-site", "a3")
    process = subprocess.Popen([sys.executable, "-c", CRASHING_PUBLISH, postgres_url], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        copying = False
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as conn:
                copying = bool(
                    conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY recommendation%'")
                    ).scalar_one()
                )
            if copying:
                break
            time.sleep(0.005)
        assert copying, "the publish never reached its COPY"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    # The old model still serves, whole; the crashed one left a pending model and no rows.
    assert api_recommendations(engine, "crash-site", "a3") == before
    with engine.connect() as conn:
        models = conn.execute(select(model_table.c.id, model_table.c.status).order_by(model_table.c.id)).all()
        rows_of_debris = conn.execute(
            select(func.count())
            .select_from(recommendation_table)
            .where(recommendation_table.c.model_id.notin_(first.model_ids.values()))
        ).scalar_one()
    assert [s for _, s in models].count("current") == 2
    assert "pending" in [s for _, s in models]
    assert rows_of_debris == 0

    # The next publish succeeds and clears the debris.
    publish_recommendations(engine, "crash-site", recommendations(2), cat)
    with engine.connect() as conn:
        statuses = sorted(conn.execute(select(model_table.c.status)).scalars())
    assert statuses == ["current", "current", "stale", "stale"]


def test_hostile_values_round_trip_exactly(engine: Engine) -> None:
    controls = "".join(chr(c) for c in range(1, 32)) + "\x7f"  # every control character but NUL
    site = "site'; DROP TABLE model; -- \\ \t" + controls
    cat = catalogue(3)
    cat["title"] = pd.array(
        [f"Quote ' \" ; backslash \\ {controls}", "emoji 📰 and <b>&amp;</b>", "$$ dollar $$ %s %(x)s"],
        dtype="string",
    )
    cat["path"] = pd.array(["/a'b/", "/c;d\\e/", "/" + controls + "/"], dtype="string")
    cat["external_id"] = pd.array(["id'1", "id\\2", "id;3"], dtype="string")
    recs = pd.DataFrame(
        [
            ("article", "id'1", "id\\2", 0.9),
            ("article", "id'1", "id;3", 0.8),
            ("popularity", "default", "id;3", 1.0),
        ],
        columns=["model_type", "source_entity_id", "recommended_external_id", "score"],
    )
    publish_recommendations(engine, site, recs, cat)
    assert api_recommendations(engine, site, "id'1") == [
        ("id\\2", cat.loc[1, "title"], 0.9),
        ("id;3", cat.loc[2, "title"], 0.8),
    ]
    from article_rec_assets.publishing.schema import article_table

    with engine.connect() as conn:
        stored = conn.execute(
            select(
                article_table.c.external_id, article_table.c.title, article_table.c.path, article_table.c.site
            )
            .where(article_table.c.site == site)
            .order_by(article_table.c.external_id)
        ).all()
    expected = sorted(
        zip(cat["external_id"], cat["title"], cat["path"], [site] * 3, strict=True), key=lambda row: row[0]
    )
    assert [tuple(r) for r in stored] == expected
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(model_table)).scalar_one() == 2


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_first_publishes_at_once_on_an_empty_database_both_create_the_tables(
    kind: str, postgres_url: str, tmp_path
) -> None:
    """Two sites' first runs start together (each in its own container): each creates the serving
    tables it finds missing, and neither fails because the other made them first."""
    url = postgres_url if kind == "postgresql" else f"sqlite:///{tmp_path / 'serving.db'}"
    engines = [connect(url, lock_timeout_seconds=30) for _ in range(6)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def first_run(engine: Engine) -> None:
        start.wait()
        try:
            ensure_schema(engine)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=first_run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert set(metadata.tables) <= set(inspect(engines[0]).get_table_names())
    finally:
        for engine in engines:
            engine.dispose()

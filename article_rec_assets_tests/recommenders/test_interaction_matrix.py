"""The readers x articles matrix: window, dwell bounds, thresholds ("more than"), decay, id maps."""

import numpy as np
import pandas as pd
import pytest

from article_rec_assets.recommenders.interaction_matrix import build_interaction_matrix
from article_rec_assets.settings.sites import TrainingSettings, load_sites

# Noon, so that a day's reading (dated at its midday) is a whole number of days old.
AS_OF = pd.Timestamp("2024-05-29T12:00:00Z")
TODAY = "2024-05-29"  # age 0 at AS_OF: weight = seconds exactly
HALF_LIFE_AGO = "2024-05-15"  # midday is 14 days before AS_OF: weight = seconds / 2
READERS = [f"r{i}" for i in range(1, 7)]
ARTICLES = ["a1", "a2", "a3"]


@pytest.fixture(scope="module")
def settings() -> TrainingSettings:
    # The packaged demo site carries the previous job's defaults (docs/contract.md, section 5).
    settings = load_sites()["demo-city-paper"].training
    assert (settings.min_readers_per_article, settings.min_articles_per_reader) == (5, 2)
    assert (settings.min_seconds_per_reader, settings.min_dwell_seconds, settings.max_dwell_seconds) == (
        60,
        30,
        600,
    )
    assert (settings.training_days, settings.decay_half_life_days) == (28, 14)
    return settings


def interactions(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(reader, article, day, engaged_seconds) rows."""
    frame = pd.DataFrame(rows, columns=["reader_id", "external_id", "day", "engaged_seconds"])
    return frame.astype(
        {
            "reader_id": "string",
            "external_id": "string",
            "day": "datetime64[ns, UTC]",
            "engaged_seconds": "float64",
        }
    )


def base_rows(seconds: float = 100, day: str = TODAY) -> list[tuple[str, str, str, float]]:
    """6 readers x 3 articles: every article has 6 readers (> 5), every reader 3 articles (> 2)
    and 300 s (> 60)."""
    return [(r, a, day, seconds) for r in READERS for a in ARTICLES]


def catalogue(ids, excluded=()) -> pd.DataFrame:
    ids = list(ids)
    return pd.DataFrame(
        {
            "external_id": pd.array(ids, dtype="string"),
            "published_at": pd.Timestamp("2024-05-01T00:00:00Z"),
            "exclude_reason": pd.array(["too_old" if i in excluded else None for i in ids], dtype="string"),
        }
    )


CATALOGUE = catalogue(["a1", "a2", "a3", "a4", "a5", "a9"])


def as_dict(result) -> dict[tuple[str, str], float]:
    coo = result.matrix.tocoo()
    return {
        (result.reader_ids[i], result.article_ids[j]): float(v)
        for i, j, v in zip(coo.row, coo.col, coo.data, strict=True)
    }


def test_base_case_keeps_everything(settings):
    result = build_interaction_matrix(interactions(base_rows()), CATALOGUE, AS_OF, settings)
    assert result.shape == (6, 3)
    assert result.reader_ids.tolist() == READERS
    assert result.article_ids.tolist() == ARTICLES
    assert result.matrix.nnz == 18
    assert np.all(result.matrix.toarray() == 100)
    assert result.stats == {
        "interactions_in": 18,
        "reader_article_days": 18,
        "within_dwell_bounds": 18,
        "on_recommendable_articles": 18,
        "readers": 6,
        "articles": 3,
        "nonzeros": 18,
    }
    assert result.as_of == AS_OF


def test_article_needs_more_than_five_readers(settings):
    rows = base_rows()
    rows += [(r, "a4", TODAY, 100) for r in READERS[:5]]  # exactly 5 readers: dropped
    rows += [(r, "a5", TODAY, 100) for r in READERS]  # 6 readers: kept
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.article_ids.tolist() == ["a1", "a2", "a3", "a5"]
    assert result.matrix.nnz == 24


def test_readers_count_once_per_article_however_many_days(settings):
    # a4: 5 distinct readers, one of them on two days -> still 5 readers -> dropped.
    rows = base_rows() + [(r, "a4", TODAY, 100) for r in READERS[:5]] + [("r1", "a4", HALF_LIFE_AGO, 100)]
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert "a4" not in result.article_ids.tolist()


def test_reader_needs_more_than_two_articles(settings):
    rows = base_rows()
    rows += [("r7", "a1", TODAY, 100), ("r7", "a2", TODAY, 100)]  # 2 articles: dropped
    rows += [("r8", a, TODAY, 100) for a in ARTICLES]  # 3 articles: kept
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.reader_ids.tolist() == [*READERS, "r8"]
    assert result.shape == (7, 3)


def test_reader_needs_more_than_the_minimum_seconds(settings):
    # With 3 articles of at least 30 s a reader always has 90 s > 60 s; raise the bar to see it.
    settings = settings.model_copy(update={"min_seconds_per_reader": 120})
    rows = base_rows()
    rows += [("r7", a, TODAY, 40) for a in ARTICLES]  # 120 s: not more than 120 -> dropped
    rows += [("r8", "a1", TODAY, 40), ("r8", "a2", TODAY, 40), ("r8", "a3", TODAY, 41)]  # 121 s: kept
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.reader_ids.tolist() == [*READERS, "r8"]


def test_reader_thresholds_count_only_surviving_articles(settings):
    # r7 reads a1, a2 and a4; a4 has too few readers, so r7 is left with 2 articles -> dropped.
    rows = base_rows()
    rows += [("r7", "a1", TODAY, 100), ("r7", "a2", TODAY, 100), ("r7", "a4", TODAY, 100)]
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.reader_ids.tolist() == READERS
    assert result.article_ids.tolist() == ARTICLES


def test_dwell_bounds_are_inclusive_and_apply_to_the_days_total(settings):
    day = HALF_LIFE_AGO
    rows = base_rows()
    rows += [
        ("r1", "a1", day, 29.9),  # below 30: dropped
        ("r2", "a1", day, 600.1),  # above 600: dropped
        ("r3", "a1", day, 30),  # kept (inclusive)
        ("r4", "a1", day, 600),  # kept (inclusive)
        ("r5", "a1", day, 20),
        ("r5", "a1", day, 15),  # two sessions, 35 s in the day: kept
        ("r6", "a1", day, 400),
        ("r6", "a1", day, 300),  # 700 s in the day: dropped
    ]
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.stats["interactions_in"] == 26
    assert result.stats["reader_article_days"] == 18 + 6
    assert result.stats["within_dwell_bounds"] == 18 + 3
    values = as_dict(result)
    # Today's 100 s at full weight plus that day's kept reading at half weight (14 days old).
    assert values[("r1", "a1")] == 100
    assert values[("r2", "a1")] == 100
    assert values[("r3", "a1")] == 100 + 30 / 2
    assert values[("r4", "a1")] == 100 + 600 / 2
    assert values[("r5", "a1")] == 100 + 35 / 2
    assert values[("r6", "a1")] == 100


def test_only_recommendable_catalogue_articles(settings):
    rows = base_rows()
    rows += [(r, "a9", TODAY, 100) for r in READERS]  # in the catalogue but excluded
    rows += [(r, "zz", TODAY, 100) for r in READERS]  # not in the catalogue
    result = build_interaction_matrix(
        interactions(rows), catalogue(["a1", "a2", "a3", "a9"], excluded={"a9"}), AS_OF, settings
    )
    assert result.article_ids.tolist() == ARTICLES
    assert result.stats["within_dwell_bounds"] == 30
    assert result.stats["on_recommendable_articles"] == 18


def test_training_window_and_decay(settings):
    rows = base_rows()
    rows += [
        ("r1", "a1", "2024-04-30", 100),  # before the window (starts 2024-05-01): left out
        ("r2", "a1", "2024-05-01", 100),  # first day of the window: midday is 28 days old -> 1/4
        ("r3", "a1", HALF_LIFE_AGO, 100),  # 14 days old -> 1/2
        ("r4", "a1", "2024-05-30", 100),  # on or after as_of: left out
    ]
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.stats["reader_article_days"] == 18 + 2
    values = as_dict(result)
    assert values[("r1", "a1")] == 100
    assert values[("r2", "a1")] == 100 + 25
    assert values[("r3", "a1")] == 100 + 50
    assert values[("r4", "a1")] == 100


def test_decay_of_a_single_old_day(settings):
    # Everything read 7 days ago (midday 2024-05-22 -> 7 days before AS_OF): 100 * 0.5 ** 0.5.
    result = build_interaction_matrix(interactions(base_rows(day="2024-05-22")), CATALOGUE, AS_OF, settings)
    expected = np.float32(100 * 0.5**0.5)
    assert np.allclose(result.matrix.toarray(), expected, rtol=1e-6, atol=0)
    assert abs(expected - 70.710678) < 1e-4


def test_id_maps_match_the_matrix(settings):
    # Distinct seconds per cell, rows shuffled: each cell must land under its own reader/article.
    rows = [(r, a, TODAY, 100 + 10 * i + j) for i, r in enumerate(READERS) for j, a in enumerate(ARTICLES)]
    rng = np.random.default_rng(3)
    shuffled = [rows[k] for k in rng.permutation(len(rows))]
    result = build_interaction_matrix(interactions(shuffled), CATALOGUE, AS_OF, settings)
    assert result.reader_ids.tolist() == sorted(READERS)
    assert result.article_ids.tolist() == sorted(ARTICLES)
    dense = result.matrix.toarray()
    for i, reader in enumerate(result.reader_ids):
        for j, article in enumerate(result.article_ids):
            expected = 100 + 10 * READERS.index(reader) + ARTICLES.index(article)
            assert dense[i, j] == expected, (reader, article)
    assert result.matrix.dtype == np.float32
    assert len(result.reader_ids) == result.matrix.shape[0]
    assert len(result.article_ids) == result.matrix.shape[1]


def test_nothing_left_gives_an_empty_matrix(settings):
    rows = [("r1", "a1", TODAY, 100), ("r2", "a1", TODAY, 100)]
    result = build_interaction_matrix(interactions(rows), CATALOGUE, AS_OF, settings)
    assert result.shape == (0, 0)
    assert result.stats["readers"] == 0
    assert result.stats["articles"] == 0


def test_page_views_signal_for_sources_without_dwell_time(settings):
    """With `signal: page_views` the values are the day's views and the seconds rules do not apply:
    2-second reads (below every dwell bound) still count, one per view."""
    rows = base_rows(seconds=2)
    frame = interactions([*rows, ("r1", "a1", TODAY, 2.0)]).assign(page_views=1)
    views = settings.model_copy(update={"signal": "page_views"})
    result = build_interaction_matrix(frame, CATALOGUE, AS_OF, views)
    assert result.signal == "page_views"
    assert result.shape == (6, 3)
    values = as_dict(result)
    assert values[("r1", "a1")] == 2 * values[("r2", "a1")]  # two views that day
    assert result.stats["within_dwell_bounds"] == 18
    # The same reading measured in seconds is below the 30 s minimum: nothing is left.
    assert build_interaction_matrix(frame, CATALOGUE, AS_OF, settings).shape == (0, 0)


def random_reading(seed: int, rows: int) -> pd.DataFrame:
    """Many readers over a few weeks: some cells on several days and in several rows a day, some
    out of the bounds, some outside the window, some ids missing, as the trailing load gives them
    (sorted categories)."""
    rng = np.random.default_rng(seed)
    readers = [f"r{i:05d}" for i in range(3_000)]
    articles = [f"a{i:03d}" for i in range(120)]
    day = pd.Timestamp(TODAY, tz="UTC") - pd.to_timedelta(rng.integers(-1, 32, rows), unit="D")
    frame = pd.DataFrame(
        {
            "reader_id": pd.Categorical.from_codes(rng.integers(-1, len(readers), rows), readers),
            "external_id": pd.Categorical.from_codes(rng.integers(-1, len(articles), rows), articles),
            "day": day,
            "engaged_seconds": rng.choice([5.0, 20.0, 40.0, 95.5, 300.0, 700.0, np.nan], rows),
            "page_views": rng.integers(0, 3, rows),
        }
    )
    return frame


@pytest.mark.parametrize("signal", ["dwell_seconds", "page_views"])
def test_blocks_of_readers_give_the_matrix_all_rows_at_once_give(settings, signal):
    frame = random_reading(7, 60_000)
    ids = [f"a{i:03d}" for i in range(0, 120, 2)]  # half the articles recommendable
    site = settings.model_copy(update={"signal": signal})
    whole = build_interaction_matrix(frame, catalogue(ids), AS_OF, site)
    assert whole.matrix.nnz > 1_000 and whole.stats["readers"] < 3_000  # the rules took some
    for rows_per_block in (1_000, 7_777, 30_000):
        blocks = build_interaction_matrix(frame, catalogue(ids), AS_OF, site, rows_per_block=rows_per_block)
        assert blocks.stats == whole.stats
        assert list(blocks.reader_ids) == list(whole.reader_ids)
        assert list(blocks.article_ids) == list(whole.article_ids)
        assert blocks.matrix.dtype == whole.matrix.dtype == np.float32
        assert np.array_equal(blocks.matrix.indptr, whole.matrix.indptr)
        assert np.array_equal(blocks.matrix.indices, whole.matrix.indices)
        assert np.array_equal(blocks.matrix.data, whole.matrix.data)

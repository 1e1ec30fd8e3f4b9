"""The pipeline's article model and its backtest, on hand-made reading data."""

import numpy as np
import pandas as pd

from article_rec_assets.evaluation.backtest import backtest
from article_rec_assets.recommenders.article_model import (
    article_model_recommendations,
    as_received,
    candidate_mask,
    fit_article_model,
    interaction_clicks,
    site_click_log,
)
from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.recommenders.lists import recommendation_problems
from article_rec_assets.settings.sites import EvaluationSettings, ModelSettings
from article_rec_assets_tests.recommenders.model_data import (
    SESSIONS,
    T0,
    catalogue,
    fitted_model,
    interactions,
)


def test_lists_hold_only_candidates_never_the_source_with_scores_in_0_1_sorted() -> None:
    cat = catalogue(["a", "b", "c", "e", "n", "x"], excluded=("c",))
    cat.loc[cat["external_id"] == "n", "published_at"] = T0 - pd.Timedelta(hours=1)
    model = fitted_model(SESSIONS, cat, ModelSettings(blend={"prior_weight": 1.0}))
    recs = article_model_recommendations(model, k=3)
    # The pipeline's own check finds nothing wrong but the missing popularity list.
    assert recommendation_problems(recs, cat) == ["no popularity recommendations"]
    assert "c" not in set(recs["recommended_external_id"]) and "c" not in set(recs["source_entity_id"])
    assert not (recs["source_entity_id"] == recs["recommended_external_id"]).any()
    assert recs["score"].between(0, 1).all() and recs["score"].max() == 1.0
    for _, group in recs.groupby("source_entity_id"):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
    a_list = list(recs.loc[recs["source_entity_id"] == "a", "recommended_external_id"])
    assert a_list[0] == "x"  # the most frequent successor
    # The brand-new article with two recent reads is a candidate for every source.
    assert recs.loc[recs["recommended_external_id"] == "n", "source_entity_id"].nunique() >= 3


def test_the_model_never_lists_an_excluded_article_even_as_the_strongest_successor() -> None:
    cat = catalogue(["a", "b", "c", "e", "n", "x"], excluded=("c",))
    model = fitted_model(SESSIONS, cat)
    codes = model.recommend_with_scores(model.catalogue, 5)[0]
    listed = set(model.article_ids[codes[codes >= 0]])
    assert "c" not in listed and "a" in listed


def test_als_neighbours_join_the_blend_only_among_candidates() -> None:
    from article_rec_assets.recommenders.als import ArticleEmbeddings

    # a and b read alike in ALS (and c, the excluded one, even more so); no session links a to b.
    cat = catalogue(["a", "b", "c", "e", "x"], excluded=("c",))
    sessions = {"s1": [("a", -50), ("x", -49)], "s2": [("b", -40), ("e", -39)], "s3": [("c", -5)]}
    vectors = {"a": [1, 0, 0], "b": [0.9, 0.1, 0], "c": [1, 0, 0.01], "e": [0, 1, 0], "x": [0, 0, 1]}
    embeddings = ArticleEmbeddings(
        article_ids=np.array(list(vectors)),
        vectors=np.array(list(vectors.values()), dtype=np.float32),
        as_of=T0,
    )
    settings = ModelSettings(als_weight=1.0, blend={"prior_weight": 0.0})
    log = site_click_log(interactions(sessions), cat)
    train = training_clicks(log, T0, 7, candidates=candidate_mask(log, cat, T0))
    without = article_model_recommendations(
        fit_article_model(train, settings.model_copy(update={"als_weight": 0})), 3
    )
    assert "b" not in set(without.loc[without["source_entity_id"] == "a", "recommended_external_id"])
    model = fit_article_model(train, settings, embeddings=embeddings)
    recs = article_model_recommendations(model, 3)
    a_list = list(recs.loc[recs["source_entity_id"] == "a", "recommended_external_id"])
    assert sorted(a_list[:2]) == ["b", "x"]  # the successor and the ALS twin
    assert "c" not in set(recs["recommended_external_id"])
    assert recs["score"].between(0, 1).all()


def test_published_scores_keep_the_models_order_where_it_tied() -> None:
    """a -> b and a -> c at the same moments: a tie the model breaks by popularity (c is read more),
    while the API would break it by external id (b first). The published score must say c > b."""
    sessions = {
        "s1": [("a", -30), ("b", -29)],
        "s2": [("a", -30), ("c", -29)],
        **{f"c{i}": [("c", -200 - i)] for i in range(3)},  # c is more popular overall
    }
    cat = catalogue(["a", "b", "c"])
    settings = ModelSettings(blend={"prior_weight": 0.0, "knn_weight": 0.0})
    recs = article_model_recommendations(fitted_model(sessions, cat, settings), k=2)
    a_list = recs[recs["source_entity_id"] == "a"].set_index("recommended_external_id")
    assert list(a_list.sort_values("rank").index) == ["c", "b"]
    assert a_list.loc["c", "score"] == 1.0 and a_list.loc["b", "score"] < 1.0
    # How the API reads it: score descending, then external id.
    api_order = a_list.reset_index().sort_values(
        ["score", "recommended_external_id"], ascending=[False, True]
    )
    assert list(api_order["recommended_external_id"]) == ["c", "b"]
    for _, group in recs.groupby("source_entity_id"):
        assert group.sort_values("rank")["score"].is_monotonic_decreasing and group["score"].is_unique


def test_a_click_received_late_is_not_trained_on_but_still_orders_the_windows_pairs() -> None:
    earlier = interactions({"s1": [("a", -50), ("b", -49)]})
    # Received during the window, stamped 5 minutes before it began: a -> c, then c -> b inside it.
    window = interactions({"s2": [("a", -6), ("c", -5), ("b", 10)]})
    whole = pd.concat([earlier, window], ignore_index=True)
    known = as_received(whole, [(T0 - pd.Timedelta(hours=2), len(earlier)), (T0, len(window))])
    clicks = interaction_clicks(known).set_index(["session_id", "article_id"])["timestamp"]
    assert clicks[("s1", "a")] == T0 - pd.Timedelta(minutes=50)  # earlier partitions as they were
    assert clicks[("s2", "a")] == T0 and clicks[("s2", "c")] == T0  # counted from the window's start
    cat = catalogue(["a", "b", "c"])
    log = site_click_log(known, cat)
    result = backtest(
        log,
        candidate_mask(log, cat, T0),
        T0,
        T0 + pd.Timedelta(hours=2),
        None,
        7,
        EvaluationSettings(),
    )
    assert result.train_clicks == 2  # s1 only
    assert result.metrics["pairs"].iloc[0] == 2  # a -> c and c -> b, both ending in the window


def test_one_click_per_session_and_article_at_its_first_sighting() -> None:
    frame = interactions({"s1": [("a", -30), ("b", -20)]})
    # The same page view seen again in a later window (its pings), and a row that is no article.
    later = frame.iloc[[0]].assign(first_seen=T0 + pd.Timedelta(minutes=10))
    not_article = frame.iloc[[1]].assign(external_id=pd.NA)
    clicks = interaction_clicks(pd.concat([frame, later, not_article], ignore_index=True))
    assert sorted(zip(clicks["article_id"], clicks["timestamp"], strict=True)) == [
        ("a", T0 - pd.Timedelta(minutes=30)),
        ("b", T0 - pd.Timedelta(minutes=20)),
    ]


def test_candidates_are_recommendable_articles_published_before_the_cut() -> None:
    frame = interactions({"s1": [("a", -30), ("b", -20), ("c", -10), ("d", -5)]})
    cat = catalogue(["a", "b", "c", "d"], excluded=("c",))
    cat.loc[cat["external_id"] == "d", "published_at"] = T0 + pd.Timedelta(hours=1)
    log = site_click_log(frame, cat)
    mask = candidate_mask(log, cat, T0)
    assert dict(zip(log.article_ids, mask, strict=True)) == {"a": True, "b": True, "c": False, "d": False}


def test_numeric_categories_give_the_clicks_plain_text_ids_give() -> None:
    """A trailing load's categories may hold numeric ids (a CMS's integer ids): their codes must
    order as the text does ("10" before "9"), as the plain column's factorization would."""
    frame = interactions({"s1": [("9", -30), ("10", -20)], "s2": [("10", -10)]})
    plain = interaction_clicks(frame)
    numeric = frame.assign(external_id=frame["external_id"].astype(int).astype("category"))
    clicks = interaction_clicks(numeric)
    assert list(clicks["article_id"].cat.categories) == ["10", "9"]
    assert rows_as_text(clicks) == rows_as_text(plain)


def rows_as_text(clicks: pd.DataFrame) -> list[tuple]:
    columns = [clicks["session_id"].astype(str), clicks["article_id"].astype(str), clicks["timestamp"]]
    return sorted(zip(*columns, strict=True))

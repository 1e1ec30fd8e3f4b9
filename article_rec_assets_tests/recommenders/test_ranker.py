"""The learned ranker: labels from each window's next clicks, features from before it, and a signal
the hand-set blend underweights learned from the data."""

import pickle
from typing import get_args

import numpy as np
import pandas as pd

from article_rec_assets.recommenders import article_model as article_model_module
from article_rec_assets.recommenders import ranker as ranker_module
from article_rec_assets.recommenders.article_model import (
    article_model_recommendations,
    examples_problem,
    fit_article_model,
    window_examples,
)
from article_rec_assets.recommenders.blend import RecencySuccessorBlend
from article_rec_assets.recommenders.click_log import NO_ARTICLE, click_log, training_clicks
from article_rec_assets.recommenders.ranker import (
    FEATURE_GROUPS,
    FEATURES,
    _sigmoid,
    feature_columns,
    fit_ranker,
    label_window_starts,
)
from article_rec_assets.recommenders.top_k import top_k_sparse
from article_rec_assets.settings.sites import (
    BlendSettings,
    ModelSettings,
    RankerFeatureGroup,
    RankerSettings,
)
from article_rec_assets_tests.recommenders.clicks import random_clicks

T0 = pd.Timestamp("2024-05-03T00:00:00Z")
SOURCES = 40
POPULAR = 999  # read all the time, alone: never anyone's next click


def _stream(hours: int = 30) -> pd.DataFrame:
    """Every 20 minutes each source i is read and followed by its own successor 100 + i, in one
    session; between them, single-click sessions on POPULAR take most of the reading."""
    rows = []
    for step in range(hours * 3):
        start = T0 - pd.Timedelta(hours=hours) + pd.Timedelta(minutes=20 * step)
        for i in range(SOURCES):
            stamp = start + pd.Timedelta(seconds=10 * i)
            session = f"s{step}-{i}"
            rows.append((f"r{i}", session, i, stamp))
            rows.append((f"r{i}", session, 100 + i, stamp + pd.Timedelta(seconds=30)))
        for j in range(4 * SOURCES):
            rows.append((f"p{j}", f"p{step}-{j}", POPULAR, start + pd.Timedelta(seconds=5 * j)))
    return pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"])


def _train(hours: int = 30):
    log = click_log(_stream(hours))
    return log, training_clicks(log, T0, train_days=7)


SETTINGS = RankerSettings(min_queries=10, min_data_in_leaf=20)


def _examples(log, settings: RankerSettings = SETTINGS, blend: BlendSettings | None = None):
    """The examples of the label windows before T0, each built from the log as the pipeline does."""
    model = ModelSettings(ranker=settings, blend=blend or BlendSettings())
    return [window_examples(log, start, model) for start in label_window_starts(T0, settings)]


def test_a_windows_labels_are_its_next_clicks_and_its_features_come_from_before_it() -> None:
    log, _ = _train(hours=6)
    start = T0 - pd.Timedelta(hours=2)
    window = window_examples(log, start, ModelSettings(ranker=SETTINGS))
    assert window is not None and window.window_start == start
    # 2 hours = 6 steps of the stream: each source's successor is its next click 6 times.
    labelled = window.labels > 0
    assert labelled.sum() == SOURCES and (window.labels[labelled] == 6).all()
    assert len(window.group_sizes) == SOURCES and window.group_sizes.sum() == len(window)
    # The plain successor count is of the 4 hours before the window: 12 steps, none of the window's 6.
    count = window.features[:, FEATURES.index("successor_count")]
    assert set(count[labelled]) == {12.0}
    assert window.all_pairs == window.pairs == 6 * SOURCES
    # The popular article is a candidate everywhere (the blend's prior) and never a label: it is
    # the candidate read most in the last hour, in every query.
    reads = window.features[:, FEATURES.index("reads_1h")]
    assert (window.labels[reads == reads.max()] == 0).all() and (reads == reads.max()).sum() == SOURCES


def test_a_windows_examples_do_not_depend_on_what_the_log_holds_after_it() -> None:
    """What makes a window's stored examples the ones a retrain would build from scratch."""
    log, _ = _train(hours=10)
    start = T0 - pd.Timedelta(hours=4)
    stream = _stream(10)
    shorter = click_log(stream[stream["timestamp"] < start + pd.Timedelta(hours=2)])
    a = window_examples(log, start, ModelSettings(ranker=SETTINGS))
    b = window_examples(shorter, start, ModelSettings(ranker=SETTINGS))
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.group_sizes, b.group_sizes)


def test_the_ranker_learns_that_successors_beat_the_popular_article_the_blend_puts_first() -> None:
    log, train = _train()
    code = {article: c for c, article in enumerate(log.article_ids)}
    sources = np.array([code[i] for i in range(SOURCES)])
    # A hand-set weight that is wrong for this site: the last minutes' most read outweighs all.
    overweighted = BlendSettings(prior_weight=1000.0)
    blend = RecencySuccessorBlend(overweighted)
    blend.fit(train, train.t0)
    assert (log.article_ids[blend.recommend(sources, 1)[:, 0]] == POPULAR).all()  # the prior wins

    ranker = fit_ranker(train, SETTINGS, overweighted, _examples(log, blend=overweighted))
    assert ranker.booster is not None and ranker.stats["ranker_queries"] == 12 * SOURCES
    scores = ranker.score_rows(sources).toarray()
    first = log.article_ids[scores.argmax(axis=1)]
    assert (first == np.arange(SOURCES) + 100).all()
    assert ((scores > 0) & (scores < 1) | (scores == 0)).all()


def test_too_few_labelled_sources_leave_the_blend_serving_alone() -> None:
    log, train = _train(hours=4)
    settings = RankerSettings(min_queries=SOURCES + 1)
    ranker = fit_ranker(train, settings, BlendSettings(), _examples(log, settings))
    assert ranker.booster is None and ranker.stats["ranker"].startswith("blend alone: 40 labelled sources")
    sources = np.arange(SOURCES)
    assert (ranker.score_rows(sources) != ranker.signals.blend.score_rows(sources)).nnz == 0


def test_the_published_lists_of_a_trained_ranker_keep_the_contract_and_survive_pickling() -> None:
    log, _ = _train()
    catalogue = np.ones(log.n_articles, dtype=bool)
    excluded = {a: c for c, a in enumerate(log.article_ids)}[100]  # the successor of source 0
    catalogue[excluded] = False
    train = training_clicks(log, T0, train_days=7, candidates=catalogue)
    settings = ModelSettings(ranker=SETTINGS)
    examples = _examples(log)
    model = fit_article_model(train, settings, examples)
    assert model.ranker is not None and model.ranker.booster is not None
    recs = article_model_recommendations(model, k=10)
    assert not (recs["source_entity_id"] == recs["recommended_external_id"]).any()
    assert "100" not in set(recs["recommended_external_id"])
    assert recs["score"].between(0, 1).all()
    for _, group in recs.groupby("source_entity_id"):
        assert (np.diff(group["score"].to_numpy()) < 0).all()
    # A rerun gives the same lists, and so does the model read back from storage.
    again = article_model_recommendations(fit_article_model(train, settings, examples), k=10)
    pd.testing.assert_frame_equal(recs, again)
    stored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(recs, article_model_recommendations(stored, k=10))


def test_feature_groups_cover_every_feature_once_and_match_the_settings() -> None:
    assert set(FEATURE_GROUPS) == set(get_args(RankerFeatureGroup))
    assert len(FEATURES) == len(set(FEATURES))
    kept = feature_columns(RankerSettings(without_features=("covisitation", "freshness")))
    names = {FEATURES[c] for c in kept}
    assert "covisitation" not in names and "age_hours" not in names and "blend_score" in names
    assert len(names) == len(FEATURES) - 4


def test_the_spread_penalty_lowers_an_article_by_the_number_of_lists_it_is_in() -> None:
    log, train = _train()
    code = {article: c for c, article in enumerate(log.article_ids)}
    sources = np.array([code[i] for i in range(SOURCES)])
    settings = SETTINGS.model_copy(update={"spread_weight": 0.5})
    ranker = fit_ranker(train, settings, BlendSettings(), _examples(log, settings))
    ranker.score_lists(train.catalogue, train.catalogue)
    # The counts are those of the catalogue's lists by the booster alone.
    alone = top_k_sparse(
        _sigmoid(ranker._predictions(train.catalogue), None),
        train.catalogue,
        settings.list_length,
        ranker.signals.tie_rank,
    )
    assert ranker.list_counts is not None
    assert np.array_equal(
        ranker.list_counts, np.bincount(alone[alone != NO_ARTICLE], minlength=log.n_articles)
    )
    successor = [code[100 + i] for i in range(SOURCES)]
    assert ranker.list_counts[code[POPULAR]] > ranker.list_counts[successor].max() > 0
    plain = _sigmoid(ranker._predictions(sources), None).toarray()
    spread = ranker.score_rows(sources).toarray()
    ratio = plain[:, code[POPULAR]] / spread[:, code[POPULAR]]
    assert (ratio > 1).all()
    # A successor sits in fewer lists than the popular article, so it loses less.
    assert (plain[np.arange(SOURCES), successor] / spread[np.arange(SOURCES), successor] < ratio).all()


def test_the_ranker_orders_the_lists_of_articles_read_lately_and_older_ones_keep_the_blends() -> None:
    """Articles last read more than `ranked_hours` ago keep the blend's list; the others the ranker's."""
    old = [
        (
            f"o{step}",
            f"o{step}",
            article,
            T0 - pd.Timedelta(hours=48) + pd.Timedelta(minutes=20 * step + second),
        )
        for step in range(20)
        for article, second in ((50, 0), (150, 1))
    ]
    stream = pd.concat(
        [_stream(), pd.DataFrame(old, columns=["reader_id", "session_id", "article_id", "timestamp"])]
    )
    log = click_log(stream)
    train = training_clicks(log, T0, train_days=7)
    code = {article: c for c, article in enumerate(log.article_ids)}
    sources = np.array([code[0], code[50]])
    overweighted = BlendSettings(prior_weight=1000.0)  # the blend puts the popular article first
    examples = _examples(log, blend=overweighted)

    def first_of_lists(ranked_hours: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        settings = ModelSettings(
            ranker=SETTINGS.model_copy(update={"ranked_hours": ranked_hours}), blend=overweighted
        )
        model = fit_article_model(train, settings, examples)
        listed = log.article_ids[model.listed(sources, 1)[0][:, 0]]
        by_ranker = log.article_ids[model.ranker.score_rows(sources).toarray().argmax(axis=1)]
        by_blend = log.article_ids[model.blend.recommend(sources, 1)[:, 0]]
        return listed, by_ranker, by_blend

    blend = RecencySuccessorBlend(overweighted)
    blend.fit(train, T0)  # a quiet site: its hours stretch by the blend's time scale
    listed, by_ranker, by_blend = first_of_lists(36 / blend.time_scale)
    assert listed[0] == by_ranker[0] == 100  # read in the last minutes: the ranker's list
    assert listed[1] == by_blend[1] == POPULAR != by_ranker[1]  # last read two days ago: the blend's
    listed, by_ranker, _ = first_of_lists(None)
    assert list(listed) == list(by_ranker)  # every list the ranker's


def test_stored_examples_stay_valid_for_settings_they_do_not_depend_on() -> None:
    log, _ = _train(hours=6)
    settings = ModelSettings(ranker=SETTINGS)
    examples = window_examples(log, T0 - pd.Timedelta(hours=2), settings)
    assert examples is not None and examples_problem(examples, settings) is None
    # LightGBM's training, the lists it orders, a feature group left out: the same examples.
    for same in ({"rounds": 20}, {"ranked_hours": None}, {"without_features": ("order",)}):
        changed = ModelSettings(ranker=SETTINGS.model_copy(update=same))
        assert examples_problem(examples, changed) is None, same
    # What the examples are made of: rebuilt.
    for other in ({"candidates": 50}, {"max_label": 5}, {"window_hours": 1.0}):
        changed = ModelSettings(ranker=SETTINGS.model_copy(update=other))
        assert examples_problem(examples, changed) == "built with other model settings", other
    assert examples_problem(examples, ModelSettings(ranker=SETTINGS, session_days=3)) is not None
    assert examples_problem(examples, ModelSettings(ranker=SETTINGS, blend=BlendSettings(prior_weight=2.0)))


def test_the_blends_lists_scored_in_batches_are_the_lists_scored_at_once(monkeypatch) -> None:
    old = [  # ten articles last read two days ago, each followed by its own successor
        (f"o{i}", f"o{i}", article, T0 - pd.Timedelta(hours=48) + pd.Timedelta(minutes=i, seconds=second))
        for i in range(10)
        for article, second in ((200 + i, 0), (300 + i, 1))
    ]
    stream = pd.concat(
        [_stream(), pd.DataFrame(old, columns=["reader_id", "session_id", "article_id", "timestamp"])]
    )
    log = click_log(stream)
    train = training_clicks(log, T0, train_days=7)
    blend = RecencySuccessorBlend()
    blend.fit(train, T0)
    settings = ModelSettings(ranker=SETTINGS.model_copy(update={"ranked_hours": 36 / blend.time_scale}))
    at_once = fit_article_model(train, settings, _examples(log))
    assert at_once.ranker.booster is not None
    ranked = at_once.ranker.ranks(train, at_once.list_sources)
    assert np.count_nonzero(~ranked) == 20 and ranked.any()  # both parts, the blend's in 7 batches
    monkeypatch.setattr(article_model_module, "LIST_BATCH_SOURCES", 3)
    batched = fit_article_model(train, settings, _examples(log))
    np.testing.assert_array_equal(batched.list_sources, at_once.list_sources)
    np.testing.assert_array_equal(batched.lists, at_once.lists)
    np.testing.assert_allclose(batched.list_scores, at_once.list_scores)
    assert (batched.lists[~ranked] != NO_ARTICLE).any()


def test_session_shares_are_counted_click_by_click() -> None:
    frame = random_clicks(T0, pd.Timedelta(days=1), 5, sessions=200, readers=30, articles=40)
    train = training_clicks(click_log(frame), T0, train_days=2)
    clicks = pd.DataFrame({"session": train.session, "article": train.article})
    clicks["position"] = clicks.groupby("session").cumcount()
    clicks["first"] = clicks["position"] == 0
    clicks["last"] = clicks.groupby("session")["position"].transform("max") == clicks["position"]
    per_article = clicks.groupby("article").agg(
        entry_share=("first", "mean"), exit_share=("last", "mean"), mean_position=("position", "mean")
    )
    shares = ranker_module._session_shares(train)
    for name in ("entry_share", "exit_share", "mean_position"):
        np.testing.assert_allclose(shares[name][per_article.index], per_article[name].to_numpy(), rtol=1e-12)
    assert per_article["mean_position"].max() > 1  # sessions of several clicks

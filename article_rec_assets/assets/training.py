"""Training: the ranker's labelled examples of each window, built once when the window is new; the
article model, one value per site, trained as of one window (the run's window, or the newest
window of a backfill) on the last days of reading and the examples of the last label windows; and
the interaction matrix its ALS neighbours come from, for a site that turns ALS on."""

import gc
from collections.abc import Mapping
from functools import partial

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, Output, asset

from article_rec_assets.assets import (
    WINDOW_BACKFILL_POLICY,
    WindowStore,
    as_of_window,
    concat_partitions,
    model_inputs,
    trailing_interactions,
    trailing_window_keys,
    window_bounds,
    window_of_store,
    windows_of_run,
)
from article_rec_assets.evaluation.backtest import BACKTEST_K
from article_rec_assets.ingestion.sessions import empty_interactions
from article_rec_assets.io_managers import WrittenWindows
from article_rec_assets.partitions import (
    SITES,
    site_key,
    site_pool,
    site_prefix,
    window_key,
    window_partitions,
    window_start,
)
from article_rec_assets.recommenders.als import NotEnoughData, train_article_embeddings
from article_rec_assets.recommenders.article_model import (
    MODEL_VERSION,
    ArticleModel,
    as_received,
    candidate_mask,
    examples_problem,
    fit_article_model,
    site_click_log,
    window_examples,
)
from article_rec_assets.recommenders.click_log import ClickLog, training_clicks
from article_rec_assets.recommenders.interaction_matrix import InteractionMatrix, build_interaction_matrix
from article_rec_assets.recommenders.ranker import RankerExamples, label_window_starts

# What each reads of the interactions (the loads read no other column).
MATRIX_COLUMNS = ["reader_id", "external_id", "day", "engaged_seconds", "page_views"]
CLICK_COLUMNS = ["reader_id", "session_id", "external_id", "first_seen"]
# Read as codes only: the click log tells readers and sessions apart, it never reads their ids.
ID_COLUMNS = ("reader_id", "session_id")


def uses_als(name: str) -> bool:
    """Whether the site's model adds ALS neighbours: only then is its interaction matrix built."""
    return SITES[name].model.als_weight > 0


def interactions_as_received(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The windows' interactions as one frame, each click counted from its window's start at the
    earliest (`as_received`)."""
    whole = concat_partitions(frames, empty_interactions())
    keys = sorted(key for key in frames if len(frames[key]))
    return as_received(whole, [(pd.Timestamp(window_start(key)), len(frames[key])) for key in keys])


# The click log of a window's last days as the steps of one run build it: the window's examples,
# the model and the backtest read the same one, so a tick builds it once (a run's steps share a
# process with the in-process executor). Keyed by the run, so nothing crosses runs.
_RUN_LOGS: dict[tuple, tuple[ClickLog, int]] = {}


def window_click_log(
    context: AssetExecutionContext,
    store,
    name: str,
    as_of: str,
    extra_windows: int = 1,
    catalogue_window: str | None = None,
) -> tuple[ClickLog, int]:
    """The site's click log of the session days up to window `as_of` and `extra_windows` more
    before them (one by default: the examples of `as_of` need the days before its start), with
    the publish times of that window's catalogue (or `catalogue_window`'s); and how many windows
    it read."""
    keys = trailing_window_keys(as_of, SITES[name].model.session_days, extra_windows=extra_windows)
    catalogue_window = catalogue_window or as_of
    memo = (context.run.run_id, name, tuple(keys), catalogue_window)
    if memo not in _RUN_LOGS:
        frames = trailing_interactions(context, store, name, keys, CLICK_COLUMNS, ids_only=ID_COLUMNS)
        catalogue = window_of_store(store, site_key(name, "article_catalogue"), catalogue_window, context.log)
        _RUN_LOGS.clear()
        _RUN_LOGS[memo] = (site_click_log(interactions_as_received(frames), catalogue), len(frames))
        # The loaded frames sit in reference cycles (pandas' slices of one frame): collected now,
        # not whenever the collector next runs, or the week's interactions stay in memory beside
        # everything the step builds from the log (for a large site, several times the log).
        del frames
        gc.collect()
    else:
        context.log.info(f"click log of {len(keys)} windows up to {as_of}: built earlier in this run")
    return _RUN_LOGS[memo]


def load_examples(model_store, name: str, keys: list[str], log) -> dict[str, RankerExamples | None]:
    """The stored examples of the windows `keys` that were built (absent: never materialized, or
    older than the store keeps)."""
    return model_store.load_windows(site_key(name, "ranker_examples"), keys, log)


def fit_site_model(
    context: AssetExecutionContext,
    store,
    model_store,
    name: str,
    as_of: str,
    catalogue_window: str | None = None,
) -> tuple[ArticleModel, dict]:
    """The site's article model as of window `as_of`'s end (what `trained_model` stores), with
    what it read. Label windows whose examples were not stored are built here from the same data
    and code as `ranker_examples` (the first retrain after a backfill of history). The catalogue
    is `as_of`'s, or `catalogue_window`'s where the caller knows `as_of` has none."""
    key = partial(site_key, name)
    site = SITES[name]  # read at run time (a test or a reload may change it)
    settings = site.model
    _, end = window_bounds(as_of)
    label_keys = (
        [window_key(start.to_pydatetime()) for start in label_window_starts(end, settings.ranker)]
        if settings.ranker.enabled
        else []
    )
    examples = load_examples(model_store, name, label_keys, context.log)
    outdated = {k: problem for k in examples if (problem := examples_problem(examples[k], settings))}
    for label_key, problem in outdated.items():
        context.log.info(f"ranker examples of {label_key} not reused: {problem}")
        del examples[label_key]
    missing = [k for k in label_keys if k not in examples]
    # The oldest missing window needs the session days before it as well.
    extra = len(label_keys) - label_keys.index(missing[0]) if missing else 1
    catalogue_window = catalogue_window or as_of
    log, windows_read = window_click_log(context, store, name, as_of, extra, catalogue_window)
    catalogue = window_of_store(store, key("article_catalogue"), catalogue_window, context.log)
    for label_key in missing:
        examples[label_key] = _window_examples(store, name, log, label_key, catalogue, context.log)
    embeddings, als_note = None, "off (als_weight 0)"
    if settings.als_weight > 0:
        matrices = model_store.load_windows(key("interaction_matrix"), [as_of], context.log)
        try:
            if as_of not in matrices:
                raise NotEnoughData(f"no interaction matrix as of {as_of}: materialize it first")
            embeddings = train_article_embeddings(matrices[as_of], settings)
            als_note = f"{len(embeddings.article_ids)} articles, {embeddings.stats['fit_seconds']} s"
        except NotEnoughData as exc:
            als_note = f"skipped: {exc}"
    train = training_clicks(log, end, settings.session_days, candidates=candidate_mask(log, catalogue, end))
    model = fit_article_model(
        train,
        settings,
        [examples[k] for k in label_keys],
        embeddings,
        site.recommendations.freshness_half_life_days,
        # The published lists, and the backtest of the next window (its metrics are at 10).
        list_length=max(site.recommendations.per_article, BACKTEST_K),
    )
    read = {
        "window": as_of,
        "windows_read": windows_read,
        "label_windows_stored": len(label_keys) - len(missing),
        "label_windows_built_here": len(missing),
        "label_windows_outdated": len(outdated),
        "als": als_note,
    }
    return model, read


def _window_examples(
    store, name: str, log: ClickLog, key: str, fallback_catalogue: pd.DataFrame, log_to
) -> RankerExamples | None:
    """`window_examples` of window `key` from `log`, its candidates from that window's catalogue
    (the newest catalogue where that window's was not stored)."""
    start, _ = window_bounds(key)
    found = store.load_windows(site_key(name, "article_catalogue"), [key], log_to)
    catalogue = found.get(key, fallback_catalogue)
    return window_examples(log, start, SITES[name].model, candidates=candidate_mask(log, catalogue, start))


def build(name: str) -> list[AssetsDefinition]:
    key = partial(site_key, name)

    @asset(
        key=key("ranker_examples"),
        deps=model_inputs(name),
        partitions_def=window_partitions(name),
        group_name=site_prefix(name),
        code_version=MODEL_VERSION,
        kinds={"numpy"},
        backfill_policy=WINDOW_BACKFILL_POLICY,
        pool=site_pool(name),
    )
    def ranker_examples(
        context: AssetExecutionContext, table_io_manager: WindowStore, io_manager: WindowStore
    ) -> Output[WrittenWindows]:
        """The learned ranker's labelled examples of the window: for the sources of its reading
        pairs (a -> b), the blend's candidates and their features from the session days of reading
        before the window's start, each labelled with how often the window went a -> b. Built once,
        when the window is new; every retrain of the next day learns from them."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        written = WrittenWindows()
        for partition, start, _ in windows_of_run(context):
            log, windows_read = window_click_log(context, table_io_manager, name, partition)
            catalogue = window_of_store(table_io_manager, key("article_catalogue"), partition, context.log)
            examples = window_examples(
                log, start, site.model, candidates=candidate_mask(log, catalogue, start)
            )
            io_manager.write_window(key("ranker_examples"), partition, examples)  # type: ignore[attr-defined]
            written[partition] = len(examples) if examples is not None else 0
            context.add_asset_metadata(
                {
                    "rows": len(examples) if examples is not None else 0,
                    "sources": len(examples.group_sizes) if examples is not None else 0,
                    "pairs": examples.all_pairs if examples is not None else 0,
                    "pairs_among_candidates": examples.pairs if examples is not None else 0,
                    "windows_read": windows_read,
                },
                partition_key=partition,
            )
        return Output(written)

    @asset(
        key=key("trained_model"),
        deps=[
            *model_inputs(name),
            key("ranker_examples"),
            *([key("interaction_matrix")] if uses_als(name) else []),
        ],
        group_name=site_prefix(name),
        code_version=MODEL_VERSION,
        kinds={"python", "scipy", "lightgbm"},
        pool=site_pool(name),
    )
    def trained_model(
        context: AssetExecutionContext, table_io_manager: WindowStore, io_manager: WindowStore
    ) -> Output[ArticleModel]:
        """The article model as of the window's end: the recency successor blend over the last days
        of reading sessions (what readers open next, recent sessions counting most, plus what is
        read right now) proposes candidates, a LambdaRank ranker trained on the stored examples of
        the last label windows orders them, joined by ALS neighbours from the interaction matrix
        when the site gives them a weight; every article's list is scored once, here. The same
        code the offline evaluation runs, and the backtest of the next window evaluates."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        model, read = fit_site_model(context, table_io_manager, io_manager, name, as_of)
        return Output(
            model,
            metadata={
                **read,
                **model.stats,
                "settings": MetadataValue.json(site.model.model_dump(mode="json")),
            },
        )

    assets = [ranker_examples, trained_model]
    if uses_als(name):
        assets.insert(0, _interaction_matrix(name))
    return assets


def _interaction_matrix(name: str) -> AssetsDefinition:
    key = partial(site_key, name)

    @asset(
        key=key("interaction_matrix"),
        deps=model_inputs(name),
        group_name=site_prefix(name),
        code_version="1",
        kinds={"scipy"},
        pool=site_pool(name),
    )
    def interaction_matrix(
        context: AssetExecutionContext, table_io_manager: WindowStore
    ) -> Output[InteractionMatrix]:
        """Readers x articles over the site's training window (28 days by default) up to the window
        it is trained as of, for the model's ALS neighbours: daily reading time within the site's
        bounds, on recommendable articles with enough readers, by readers with enough reading, each
        day decayed by its age. Built only for a site whose `model.als_weight` is above 0."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        _, end = window_bounds(as_of)
        keys = trailing_window_keys(as_of, site.training.training_days)
        frames = trailing_interactions(context, table_io_manager, name, keys, MATRIX_COLUMNS)
        catalogue = window_of_store(table_io_manager, key("article_catalogue"), as_of, context.log)
        interactions = concat_partitions(frames, empty_interactions())
        data = build_interaction_matrix(interactions, catalogue, end, site.training)
        readers, articles = data.shape
        density = data.matrix.nnz / (readers * articles) if readers and articles else 0.0
        return Output(
            data,
            metadata={
                "window": as_of,
                "windows_read": len(frames),
                "first_window": keys[0],
                "readers": readers,
                "articles": articles,
                "nonzeros": int(data.matrix.nnz),
                "density": round(density, 6),
                "filter_steps": MetadataValue.json(data.stats),
            },
        )

    return interaction_matrix

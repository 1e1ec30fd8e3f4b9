"""Training: the interaction matrix over the site's trailing training window, and the model
fitted on the reading sessions; one value per site, trained as of one window (the run's window,
or the newest window of a backfill)."""

from functools import partial

from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, Output, asset

from article_rec_assets.assets import (
    WindowStore,
    as_of_window,
    concat_partitions,
    model_inputs,
    trailing_interactions,
    trailing_window_keys,
    window_bounds,
    window_of_store,
)
from article_rec_assets.ingestion.sessions import empty_interactions
from article_rec_assets.partitions import SITES, site_key, site_pool, site_prefix
from article_rec_assets.recommenders.als import NotEnoughData, train_article_embeddings
from article_rec_assets.recommenders.article_model import (
    ArticleModel,
    candidate_mask,
    fit_article_model,
    site_click_log,
)
from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.recommenders.interaction_matrix import InteractionMatrix, build_interaction_matrix

# What each reads of the interactions (the loads read no other column).
MATRIX_COLUMNS = ["reader_id", "external_id", "day", "engaged_seconds", "page_views"]
CLICK_COLUMNS = ["reader_id", "session_id", "external_id", "first_seen"]


def build(name: str) -> list[AssetsDefinition]:
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
        it is trained as of: daily reading time within the site's bounds, on recommendable articles
        with enough readers, by readers with enough reading, each day decayed by its age."""
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

    @asset(
        key=key("trained_model"),
        deps=model_inputs(name),
        group_name=site_prefix(name),
        code_version="3",
        kinds={"python", "scipy", "lightgbm"},
        pool=site_pool(name),
    )
    def trained_model(
        context: AssetExecutionContext, table_io_manager: WindowStore, interaction_matrix: InteractionMatrix
    ) -> Output[ArticleModel]:
        """The article model as of the window's end: the recency successor blend over the last days
        of reading sessions (what readers open next, recent sessions counting most, plus what is
        read right now) proposes candidates, a LambdaRank ranker trained on the next clicks of the
        last windows orders them, joined by ALS neighbours from the interaction matrix when the site
        gives them a weight. The same code the offline evaluation and the backtest run."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        _, end = window_bounds(as_of)
        embeddings, als_note = None, "off (als_weight 0)"
        if site.model.als_weight > 0:
            try:
                embeddings = train_article_embeddings(interaction_matrix, site.model)
                als_note = f"{len(embeddings.article_ids)} articles, {embeddings.stats['fit_seconds']} s"
            except NotEnoughData as exc:
                als_note = f"skipped: {exc}"
        keys = trailing_window_keys(as_of, site.model.session_days)
        frames = trailing_interactions(context, table_io_manager, name, keys, CLICK_COLUMNS)
        catalogue = window_of_store(table_io_manager, key("article_catalogue"), as_of, context.log)
        interactions = concat_partitions(frames, empty_interactions())
        log = site_click_log(interactions, catalogue)
        train = training_clicks(
            log, end, site.model.session_days, candidates=candidate_mask(log, catalogue, end)
        )
        model = fit_article_model(
            train, site.model, embeddings, site.recommendations.freshness_half_life_days
        )
        return Output(
            model,
            metadata={
                "window": as_of,
                "windows_read": len(frames),
                **model.stats,
                "als": als_note,
                "settings": MetadataValue.json(site.model.model_dump()),
            },
        )

    return [interaction_matrix, trained_model]

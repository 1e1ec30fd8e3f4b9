"""Training: the interaction matrix over the trailing training window, and the model fitted on it."""

import math

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from article_rec_assets.assets import concat_partitions, partition_site_and_window, trailing_input
from article_rec_assets.ingestion.sessions import empty_interactions
from article_rec_assets.partitions import SITES, site_window_partitions, trailing_windows
from article_rec_assets.recommenders.als import NotEnoughData, train_article_embeddings
from article_rec_assets.recommenders.article_model import (
    ArticleModel,
    candidate_mask,
    fit_article_model,
    site_click_log,
)
from article_rec_assets.recommenders.click_log import training_clicks
from article_rec_assets.recommenders.interaction_matrix import InteractionMatrix, build_interaction_matrix

# Mappings are fixed when definitions load, so each spans the longest window of any site; each
# site's own `training_days` / `session_days` then trims what it reads.
TRAINING_DAYS = max(site.training.training_days for site in SITES.values())
SESSION_DAYS = math.ceil(max(site.model.session_days for site in SITES.values()))
# What each reads of the interactions (the loads read no other column).
MATRIX_COLUMNS = ["reader_id", "external_id", "day", "engaged_seconds", "page_views"]
CLICK_COLUMNS = ["reader_id", "session_id", "external_id", "first_seen"]


@asset(
    partitions_def=site_window_partitions,
    group_name="training",
    ins={"sessionized_interactions": trailing_input(trailing_windows(TRAINING_DAYS), MATRIX_COLUMNS)},
    code_version="1",
    kinds={"scipy"},
)
def interaction_matrix(
    context: AssetExecutionContext,
    sessionized_interactions: dict[str, pd.DataFrame],
    article_catalogue: pd.DataFrame,
) -> Output[InteractionMatrix]:
    """Readers x articles over the site's training window (28 days by default): daily reading time
    within the site's bounds, on recommendable articles with enough readers, by readers with enough
    reading, each day decayed by its age. Lineage shows which windows it was built from."""
    site, _, end = partition_site_and_window(context)
    interactions = concat_partitions(sessionized_interactions, empty_interactions())
    data = build_interaction_matrix(interactions, article_catalogue, end, site.training)
    readers, articles = data.shape
    density = data.matrix.nnz / (readers * articles) if readers and articles else 0.0
    return Output(
        data,
        metadata={
            "windows_read": len(sessionized_interactions),
            "readers": readers,
            "articles": articles,
            "nonzeros": int(data.matrix.nnz),
            "density": round(density, 6),
            "filter_steps": MetadataValue.json(data.stats),
        },
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="training",
    ins={"sessionized_interactions": trailing_input(trailing_windows(SESSION_DAYS), CLICK_COLUMNS)},
    code_version="3",
    kinds={"python", "scipy", "lightgbm"},
)
def trained_model(
    context: AssetExecutionContext,
    interaction_matrix: InteractionMatrix,
    sessionized_interactions: dict[str, pd.DataFrame],
    article_catalogue: pd.DataFrame,
) -> Output[ArticleModel]:
    """The article model as of the window's end: the recency successor blend over the last days of
    reading sessions (what readers open next, recent sessions counting most, plus what is read
    right now) proposes candidates, a LambdaRank ranker trained on the next clicks of the last
    windows orders them, joined by ALS neighbours from the interaction matrix when the site gives
    them a weight. The same code the offline evaluation and the backtest run."""
    site, _, end = partition_site_and_window(context)
    embeddings, als_note = None, "off (als_weight 0)"
    if site.model.als_weight > 0:
        try:
            embeddings = train_article_embeddings(interaction_matrix, site.model)
            als_note = f"{len(embeddings.article_ids)} articles, {embeddings.stats['fit_seconds']} s"
        except NotEnoughData as exc:
            als_note = f"skipped: {exc}"
    interactions = concat_partitions(sessionized_interactions, empty_interactions())
    log = site_click_log(interactions, article_catalogue)
    train = training_clicks(
        log, end, site.model.session_days, candidates=candidate_mask(log, article_catalogue, end)
    )
    model = fit_article_model(train, site.model, embeddings, site.recommendations.freshness_half_life_days)
    return Output(
        model,
        metadata={
            "windows_read": len(sessionized_interactions),
            **model.stats,
            "als": als_note,
            "settings": MetadataValue.json(site.model.model_dump()),
        },
    )

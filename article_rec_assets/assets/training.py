"""Training: the interaction matrix over the trailing training window, and the model fitted on it."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from article_rec_assets.assets import concat_partitions, partition_site_and_window
from article_rec_assets.logic.interaction_matrix import InteractionMatrix, build_interaction_matrix
from article_rec_assets.logic.sessions import empty_interactions
from article_rec_assets.logic.training import ArticleEmbeddings, train_article_embeddings
from article_rec_assets.partitions import SITES, site_window_partitions, trailing_windows

# The mapping is fixed when definitions load, so it spans the longest training window of any
# site; each site's own `training_days` then trims what it reads.
TRAINING_DAYS = max(site.training.training_days for site in SITES.values())


@asset(
    partitions_def=site_window_partitions,
    group_name="training",
    ins={
        "sessionized_interactions": AssetIn(
            partition_mapping=trailing_windows(TRAINING_DAYS),
            # Windows before a site's first data, or not yet backfilled, are simply absent.
            metadata={"allow_missing_partitions": True},
        )
    },
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
    code_version="1",
    kinds={"python"},
)
def trained_model(
    context: AssetExecutionContext, interaction_matrix: InteractionMatrix
) -> Output[ArticleEmbeddings]:
    """Article embeddings from implicit's alternating least squares on the interaction matrix."""
    site, _, _ = partition_site_and_window(context)
    embeddings = train_article_embeddings(interaction_matrix, site.model)
    return Output(
        embeddings,
        metadata={
            "articles": len(embeddings.article_ids),
            "factors": site.model.factors,
            "iterations": site.model.iterations,
            "regularization": site.model.regularization,
            "fit_seconds": embeddings.stats["fit_seconds"],
        },
    )

"""Recommendations: similar articles per article, and the popularity fallback."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    asset,
)

from article_rec_assets.assets import concat_partitions, partition_site_and_window, preview
from article_rec_assets.logic.recommendations import (
    article_popularity as compute_popularity,
)
from article_rec_assets.logic.recommendations import (
    popularity_recommendations,
    recommendation_problems,
    similar_articles,
)
from article_rec_assets.logic.sessions import empty_interactions
from article_rec_assets.logic.training import ArticleEmbeddings
from article_rec_assets.partitions import SITES, site_window_partitions, trailing_windows
from article_rec_assets.schemas import ArticlePopularityType, ArticleRecommendationsType

POPULARITY_DAYS = max(site.recommendations.popularity_days for site in SITES.values())


@asset(
    partitions_def=site_window_partitions,
    group_name="recommendations",
    io_manager_key="table_io_manager",
    dagster_type=ArticlePopularityType,
    ins={
        "sessionized_interactions": AssetIn(
            partition_mapping=trailing_windows(POPULARITY_DAYS),
            metadata={"allow_missing_partitions": True},
        )
    },
    code_version="1",
    kinds={"pandas"},
)
def article_popularity(
    context: AssetExecutionContext, sessionized_interactions: dict[str, pd.DataFrame]
) -> Output[pd.DataFrame]:
    """Reading seconds and readers per article over the site's popularity window (7 days by default)."""
    site, _, end = partition_site_and_window(context)
    interactions = concat_partitions(sessionized_interactions, empty_interactions())
    popularity = compute_popularity(interactions, end, site.recommendations.popularity_days)
    return Output(
        popularity,
        metadata={
            "dagster/row_count": len(popularity),
            "windows_read": len(sessionized_interactions),
            "preview": preview(popularity),
        },
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="recommendations",
    io_manager_key="table_io_manager",
    dagster_type=ArticleRecommendationsType,
    check_specs=[
        AssetCheckSpec(
            "publishable",
            asset="article_recommendations",
            blocking=True,
            description="Both models present, scores in [0, 1], no self-recommendation, every "
            "article recommendable. A failure stops publishing; the published model keeps serving.",
        )
    ],
    code_version="1",
    kinds={"numpy"},
)
def article_recommendations(
    context: AssetExecutionContext,
    trained_model: ArticleEmbeddings,
    article_popularity: pd.DataFrame,
    article_catalogue: pd.DataFrame,
):
    """Top-k similar articles per article (rescaled cosine x freshness) and the popularity list."""
    site, _, end = partition_site_and_window(context)
    settings = site.recommendations
    recs = pd.concat(
        [
            similar_articles(trained_model, article_catalogue, settings),
            popularity_recommendations(article_popularity, article_catalogue, end, settings),
        ],
        ignore_index=True,
    )
    titles = article_catalogue.set_index("external_id")["title"]
    example = recs[recs["source_entity_id"] == recs["source_entity_id"].iloc[0]] if len(recs) else recs
    yield Output(
        recs,
        metadata={
            "dagster/row_count": len(recs),
            "articles_with_recommendations": int(
                recs.loc[recs["model_type"] == "article", "source_entity_id"].nunique()
            ),
            "popularity_recommendations": int((recs["model_type"] == "popularity").sum()),
            "mean_score": float(recs["score"].mean()) if len(recs) else 0.0,
            "example": MetadataValue.md(
                example.assign(title=example["recommended_external_id"].map(titles))
                .head(10)
                .to_markdown(index=False)
                if len(example)
                else "_empty_"
            ),
            "preview": preview(recs),
        },
    )
    problems = recommendation_problems(recs, article_catalogue)
    yield AssetCheckResult(
        check_name="publishable",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else "ready to publish",
        metadata={"problems": MetadataValue.json(problems), "rows": len(recs)},
    )

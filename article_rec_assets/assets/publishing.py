"""Publishing: the recommendations, swapped into the serving database the API reads."""

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from article_rec_assets.assets import partition_site_and_window
from article_rec_assets.logic.publishing import current_model, publish_recommendations
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.resources import ServingDatabase

# Run tag that says what the run's publish step did: `published` or `skipped`.
PUBLISH_TAG = "article_rec/publish"


@asset(
    partitions_def=site_window_partitions,
    group_name="publishing",
    # Only after the backtest approved the model (its blocking check `approved`).
    deps=["recommendation_backtest"],
    code_version="1",
    kinds={"postgres"},
)
def published_recommendations(
    context: AssetExecutionContext,
    serving_database: ServingDatabase,
    article_recommendations: pd.DataFrame,
    article_catalogue: pd.DataFrame,
) -> MaterializeResult:
    """The window's models written `pending`, then made `current` in one transaction per model
    type; the previous `current` model turns `stale`, and old stale models are deleted. A backfill
    of an older window does not replace a model trained on later data: it publishes nothing."""
    site, _, end = partition_site_and_window(context)
    engine = serving_database.engine()
    try:
        current = current_model(engine, site.name, "article")
        if current is not None and current.trained_until is not None and current.trained_until > end:
            note = (
                f"not published: model {current.model_id}, trained until "
                f"{current.trained_until:%Y-%m-%d %H:%M}, is newer than this window"
            )
            context.log.warning(note)
            # Visible as a skip on the run (tag) and the materialization, never as a 0-row publish.
            context.instance.add_run_tags(context.run_id, {PUBLISH_TAG: "skipped"})
            return MaterializeResult(metadata={"status": "skipped", "skipped": note})
        result = publish_recommendations(
            engine,
            site.name,
            article_recommendations,
            article_catalogue,
            keep_stale=serving_database.keep_stale_models,
            trained_until=end,  # the backtest of a later window compares with it
        )
    finally:
        engine.dispose()
    context.instance.add_run_tags(context.run_id, {PUBLISH_TAG: "published"})
    return MaterializeResult(
        metadata={
            "status": "published",
            "model_ids": MetadataValue.json(result.model_ids),
            "recommendations": MetadataValue.json(result.recommendations),
            "dagster/row_count": sum(result.recommendations.values()),
            "articles_upserted": result.articles_upserted,
            "stale_models_deleted": result.stale_models_deleted,
            "publish_seconds": round(result.seconds, 3),
            "database": engine.dialect.name,
        }
    )

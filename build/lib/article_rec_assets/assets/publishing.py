"""Publishing: the recommendations, swapped into the serving database the API reads."""

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from article_rec_assets.assets import partition_site_and_window
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.swap import publish_recommendations
from article_rec_assets.resources import ServingDatabase

# Run tag that says what the run's publish step did: `published` or `skipped`.
PUBLISH_TAG = "article_rec/publish"
# A backfill leaves the serving database alone unless launched with this tag set to `true`.
PUBLISH_FROM_BACKFILL_TAG = "article_rec/publish_from_backfill"
BACKFILL_TAG = "dagster/backfill"


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
    type; the previous `current` model turns `stale`, and old stale models are deleted. Nothing is
    published (and the skip is reported as such) from a backfill run unless it is tagged
    `article_rec/publish_from_backfill=true`, nor when a model trained on later data serves."""
    site, _, end = partition_site_and_window(context)
    tags = context.run.tags
    if BACKFILL_TAG in tags and tags.get(PUBLISH_FROM_BACKFILL_TAG, "").lower() != "true":
        return _skipped(
            context,
            f"not published: run of backfill {tags[BACKFILL_TAG]} (backfills re-ingest and retrain; "
            f"launch retrain_job for the newest window, or tag the backfill "
            f"{PUBLISH_FROM_BACKFILL_TAG}=true, to publish)",
        )
    engine = serving_database.engine()
    try:
        current = current_model(engine, site.name, "article")
        if current is not None and current.trained_until is not None and current.trained_until > end:
            return _skipped(
                context,
                f"not published: model {current.model_id}, trained until "
                f"{current.trained_until:%Y-%m-%d %H:%M}, is newer than this window",
            )
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
    context.instance.add_run_tags(context.run.run_id, {PUBLISH_TAG: "published"})
    return MaterializeResult(
        metadata={
            "status": "published",
            "model_ids": MetadataValue.json(result.model_ids),
            "recommendations": MetadataValue.json(result.recommendations),
            "dagster/row_count": sum(result.recommendations.values()),
            "articles_upserted": result.articles_upserted,
            "stale_models_deleted": result.stale_models_deleted,
            "publish_seconds": round(result.seconds, 3),
            "what_went_live": MetadataValue.md(live_preview(article_recommendations, article_catalogue)),
            "database": engine.dialect.name,
        }
    )


def _skipped(context: AssetExecutionContext, note: str) -> MaterializeResult:
    """Visible as a skip on the run (tag) and the materialization, never as a 0-row publish."""
    context.log.warning(note)
    context.instance.add_run_tags(context.run.run_id, {PUBLISH_TAG: "skipped"})
    return MaterializeResult(metadata={"status": "skipped", "skipped": note})


def live_preview(recs: pd.DataFrame, catalogue: pd.DataFrame, sources: int = 5, top: int = 5) -> str:
    """A Markdown table of what readers now see: the most popular articles (the popularity
    list's order) with the titles and scores of their top recommendations."""
    titles = catalogue.drop_duplicates("external_id").set_index("external_id")["title"]
    popular = recs[recs["model_type"] == "popularity"].sort_values("score", ascending=False)
    articles = recs[recs["model_type"] == "article"]
    rows = []
    for source in popular["recommended_external_id"].head(sources):
        listed = articles[articles["source_entity_id"] == source].sort_values("score", ascending=False)
        shown = "; ".join(
            f"{titles.get(r.recommended_external_id, r.recommended_external_id)} ({r.score:.3f})"
            for r in listed.head(top).itertuples()
        )
        rows.append({"source": titles.get(source, source), f"top {top}": shown or "_popularity fallback_"})
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "_nothing published_"

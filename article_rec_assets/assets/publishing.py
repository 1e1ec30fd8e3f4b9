"""Publishing: the recommendations, swapped into the serving database the API reads."""

from functools import partial

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from article_rec_assets.assets import WindowStore, as_of_window, model_inputs, window_bounds, window_of_store
from article_rec_assets.partitions import site_key, site_pool, site_prefix
from article_rec_assets.publishing.api import current_model
from article_rec_assets.publishing.swap import publish_recommendations
from article_rec_assets.resources import ServingDatabase

# Run tag that says what the run's publish step did: `published` or `skipped`.
PUBLISH_TAG = "article_rec/publish"
# A backfill leaves the serving database alone unless launched with this tag set to `true`.
PUBLISH_FROM_BACKFILL_TAG = "article_rec/publish_from_backfill"
BACKFILL_TAG = "dagster/backfill"


def build(name: str) -> list[AssetsDefinition]:
    key = partial(site_key, name)

    @asset(
        key=key("published_recommendations"),
        # Only after the backtest approved the model (its blocking check `approved`).
        deps=[key("recommendation_backtest"), *model_inputs(name)[1:]],
        group_name=site_prefix(name),
        pool=site_pool(name),
        code_version="1",
        kinds={"postgres"},
    )
    def published_recommendations(
        context: AssetExecutionContext,
        serving_database: ServingDatabase,
        table_io_manager: WindowStore,
        article_recommendations: pd.DataFrame,
    ) -> MaterializeResult:
        """The recommendations written `pending`, then made `current` in one transaction per model
        type; the previous `current` model turns `stale`, and old stale models are deleted. Nothing
        is published (and the skip is reported as such) from a backfill run unless it is tagged
        `article_rec/publish_from_backfill=true`, nor when a model trained on later data serves."""
        as_of = as_of_window(context, name)
        _, end = window_bounds(as_of)
        tags = context.run.tags
        if BACKFILL_TAG in tags and tags.get(PUBLISH_FROM_BACKFILL_TAG, "").lower() != "true":
            return _skipped(
                context,
                as_of,
                f"not published: run of backfill {tags[BACKFILL_TAG]} (backfills re-ingest and retrain; "
                f"launch the site's retrain job, or tag the backfill {PUBLISH_FROM_BACKFILL_TAG}=true, "
                f"to publish)",
            )
        article_catalogue = window_of_store(table_io_manager, key("article_catalogue"), as_of, context.log)
        engine = serving_database.engine()
        try:
            current = current_model(engine, name, "article")
            if current is not None and current.trained_until is not None and current.trained_until > end:
                return _skipped(
                    context,
                    as_of,
                    f"not published: model {current.model_id}, trained until "
                    f"{current.trained_until:%Y-%m-%d %H:%M}, is newer than this window",
                )
            result = publish_recommendations(
                engine,
                name,
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
                "window": as_of,
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

    return [published_recommendations]


def _skipped(context: AssetExecutionContext, window: str, note: str) -> MaterializeResult:
    """Visible as a skip on the run (tag) and the materialization, never as a 0-row publish."""
    context.log.warning(note)
    context.instance.add_run_tags(context.run.run_id, {PUBLISH_TAG: "skipped"})
    return MaterializeResult(metadata={"window": window, "status": "skipped", "skipped": note})


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

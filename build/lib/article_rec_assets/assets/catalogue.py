"""The article catalogue: which paths are articles, their titles and publish times."""

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from article_rec_assets.assets import partition_site_and_window, preview
from article_rec_assets.catalogue.resolver import merge_resolution
from article_rec_assets.catalogue.snapshot import catalogue_as_of
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.publishing.catalogue_cache import read_catalogue_cache, write_catalogue_resolution
from article_rec_assets.resources import CatalogueSources, ServingDatabase
from article_rec_assets.schemas import ArticleCatalogueType


@asset(
    partitions_def=site_window_partitions,
    group_name="catalogue",
    io_manager_key="table_io_manager",
    dagster_type=ArticleCatalogueType,
    code_version="2",
    kinds={"pandas", "postgres"},
)
def article_catalogue(
    context: AssetExecutionContext,
    catalogue_sources: CatalogueSources,
    serving_database: ServingDatabase,
    raw_events: pd.DataFrame,
) -> Output[pd.DataFrame]:
    """The site's catalogue as it stood at the window's end, with why an article cannot be
    recommended (no publish time, sponsored, too old, not an article path) where that is so.

    Only the window's paths that the `path` cache does not settle are looked up (and the last
    day's articles refreshed); what is resolved is upserted into `article` and `path`."""
    site, _, end = partition_site_and_window(context)
    engine = serving_database.engine()
    try:
        cache = read_catalogue_cache(engine, site.name)
        resolution = catalogue_sources.resolve(
            site, raw_events["page_path"].dropna().unique(), cache, end.to_pydatetime()
        )
        write_catalogue_resolution(engine, site.name, resolution)
    finally:
        engine.dispose()
    catalogue = catalogue_as_of(merge_resolution(cache, resolution).articles, site, end)
    reasons = catalogue["exclude_reason"].value_counts()
    stats = resolution.stats
    return Output(
        catalogue,
        metadata={
            "dagster/row_count": len(catalogue),
            "recommendable": int(catalogue["exclude_reason"].isna().sum()),
            "excluded_by_reason": MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
            "paths_seen": stats.paths_seen,
            "paths_settled_by_cache": stats.paths_settled_by_cache,
            "paths_looked_up": stats.paths_looked_up,
            "articles_fetched": stats.ids_fetched,
            "articles_refreshed": stats.ids_refreshed,
            "source_requests": stats.requests,
            "path_reasons": MetadataValue.json(stats.path_reasons),
            "newest_published_at": str(catalogue["published_at"].max()),
            "preview": preview(catalogue.sort_values("published_at", ascending=False)),
        },
    )

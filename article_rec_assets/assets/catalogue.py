"""The article catalogue: which paths are articles, their titles and publish times, as of each
window's end."""

from functools import partial

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue, Output, asset

from article_rec_assets.assets import WINDOW_BACKFILL_POLICY, WindowStore, preview, windows_of_run
from article_rec_assets.catalogue.resolver import merge_resolution
from article_rec_assets.catalogue.snapshot import catalogue_as_of
from article_rec_assets.io_managers import LazyWindows, WrittenWindows
from article_rec_assets.partitions import SITES, site_key, site_pool, site_prefix, window_partitions
from article_rec_assets.publishing.catalogue_cache import read_catalogue_cache, write_catalogue_resolution
from article_rec_assets.resources import CatalogueSources, ServingDatabase
from article_rec_assets.schemas import ARTICLE_CATALOGUE, ArticleCatalogueType, validate_window


def build(name: str) -> list[AssetsDefinition]:
    key = partial(site_key, name)

    @asset(
        key=key("article_catalogue"),
        ins={"raw_events": AssetIn(key("raw_events"), metadata={"by_window": True})},
        partitions_def=window_partitions(name),
        group_name=site_prefix(name),
        io_manager_key="table_io_manager",
        dagster_type=ArticleCatalogueType,
        code_version="2",
        kinds={"pandas", "postgres"},
        backfill_policy=WINDOW_BACKFILL_POLICY,
        pool=site_pool(name),
    )
    def article_catalogue(
        context: AssetExecutionContext,
        catalogue_sources: CatalogueSources,
        serving_database: ServingDatabase,
        table_io_manager: WindowStore,
        raw_events: LazyWindows,
    ) -> Output[WrittenWindows]:
        """The site's catalogue as it stood at the window's end, with why an article cannot be
        recommended (no publish time, sponsored, too old, not an article path) where that is so.

        Only the window's paths that the `path` cache does not settle are looked up (and the last
        day's articles refreshed); what is resolved is upserted into `article` and `path`. A range
        of windows is resolved oldest first, each window against what the ones before it stored."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        written = WrittenWindows()
        engine = serving_database.engine()
        try:
            for partition, _, end in windows_of_run(context):
                # Each path with how often the window read it: a path read once in a flood of
                # made-up paths waits (`min_reads_to_look_up`).
                paths = raw_events[partition]["page_path"].dropna().value_counts().to_dict()
                cache = read_catalogue_cache(engine, name)
                resolution = catalogue_sources.resolve(site, paths, cache, end.to_pydatetime())
                write_catalogue_resolution(engine, name, resolution)
                catalogue = catalogue_as_of(merge_resolution(cache, resolution).articles, site, end)
                validate_window(ARTICLE_CATALOGUE, f"{name} {partition}", catalogue)
                table_io_manager.write_window(key("article_catalogue"), partition, catalogue)  # type: ignore[attr-defined]
                written[partition] = len(catalogue)
                reasons = catalogue["exclude_reason"].value_counts()
                stats = resolution.stats
                context.add_asset_metadata(
                    {
                        "dagster/row_count": len(catalogue),
                        "recommendable": int(catalogue["exclude_reason"].isna().sum()),
                        "excluded_by_reason": MetadataValue.json(
                            {str(k): int(v) for k, v in reasons.items()}
                        ),
                        "paths_seen": stats.paths_seen,
                        "paths_settled_by_cache": stats.paths_settled_by_cache,
                        "paths_looked_up": stats.paths_looked_up,
                        "paths_waiting": stats.paths_waiting,
                        "articles_fetched": stats.ids_fetched,
                        "articles_refreshed": stats.ids_refreshed,
                        "source_requests": stats.requests,
                        "path_reasons": MetadataValue.json(stats.path_reasons),
                        "newest_published_at": str(catalogue["published_at"].max()),
                        "preview": preview(catalogue.sort_values("published_at", ascending=False)),
                    },
                    partition_key=partition,
                )
        finally:
            engine.dispose()
        return Output(written)

    return [article_catalogue]

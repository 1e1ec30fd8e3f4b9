"""The article catalogue: which paths are articles, their titles and publish times."""

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from article_rec_assets.assets import partition_site_and_window, preview
from article_rec_assets.logic.catalogue import catalogue_as_of
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.resources import CatalogueFiles
from article_rec_assets.schemas import ArticleCatalogueType


@asset(
    partitions_def=site_window_partitions,
    group_name="catalogue",
    io_manager_key="table_io_manager",
    dagster_type=ArticleCatalogueType,
    code_version="1",
    kinds={"pandas"},
)
def article_catalogue(
    context: AssetExecutionContext, catalogue_files: CatalogueFiles
) -> Output[pd.DataFrame]:
    """The site's catalogue as it stood at the window's end, with why an article cannot be
    recommended (no publish time, too old, path not an article) where that is so."""
    site, _, end = partition_site_and_window(context)
    catalogue = catalogue_as_of(catalogue_files.load(site), site, end)
    reasons = catalogue["exclude_reason"].value_counts()
    return Output(
        catalogue,
        metadata={
            "dagster/row_count": len(catalogue),
            "recommendable": int(catalogue["exclude_reason"].isna().sum()),
            "excluded_by_reason": MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
            "newest_published_at": str(catalogue["published_at"].max()),
            "preview": preview(catalogue.sort_values("published_at", ascending=False)),
        },
    )

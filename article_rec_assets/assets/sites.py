"""The asset factory: every asset of one site, built from its settings file."""

from __future__ import annotations

from dagster import AssetsDefinition

from article_rec_assets.assets import catalogue, ingestion, publishing, recommendations, training
from article_rec_assets.settings.sites import SiteConfig


def site_assets(site: SiteConfig) -> list[AssetsDefinition]:
    """The site's window assets (ingestion, catalogue) and model assets (training,
    recommendations, publishing), under its key prefix and in its group."""
    return [
        *ingestion.build(site),
        *catalogue.build(site),
        *training.build(site),
        *recommendations.build(site),
        *publishing.build(site),
    ]

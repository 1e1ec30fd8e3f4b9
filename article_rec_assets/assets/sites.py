"""The asset factory: every asset of one site, built from its settings file."""

from __future__ import annotations

import warnings

from dagster import AssetsDefinition, BetaWarning

from article_rec_assets.assets import catalogue, ingestion, publishing, recommendations, training


def site_assets(site: str) -> list[AssetsDefinition]:
    """The site's window assets (ingestion, catalogue) and model assets (training,
    recommendations, publishing), under its key prefix and in its group. Each asset reads the
    site's settings when it runs."""
    with warnings.catch_warnings():  # backfill policies are marked beta; ranges are what they are for
        warnings.simplefilter("ignore", BetaWarning)
        return [
            *ingestion.build(site),
            *catalogue.build(site),
            *training.build(site),
            *recommendations.build(site),
            *publishing.build(site),
        ]

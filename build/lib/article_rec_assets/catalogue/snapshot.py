"""The site's article catalogue: which articles exist, their titles and publish times."""

from __future__ import annotations

import pandas as pd

from article_rec_assets.ingestion.sessions import article_ids_for_paths
from article_rec_assets.settings.sites import SiteConfig

CATALOGUE_COLUMNS = ("external_id", "path", "title", "published_at", "exclude_reason")


def catalogue_as_of(raw: pd.DataFrame, site: SiteConfig, as_of: pd.Timestamp) -> pd.DataFrame:
    """Articles published before `as_of`, each with why it cannot be recommended (or NA).

    Articles published after `as_of` are left out so that a past window sees the catalogue as it was.
    A reason the source gave (sponsored, not found, ...) is kept.
    """
    published = raw["published_at"]
    if not pd.api.types.is_datetime64_any_dtype(published):
        published = pd.to_datetime(published.replace("", None), utc=True, format="ISO8601", errors="coerce")
    given = raw["exclude_reason"] if "exclude_reason" in raw.columns else pd.Series(pd.NA, index=raw.index)
    frame = pd.DataFrame(
        {
            "external_id": raw["external_id"].astype(str),
            "path": raw["path"].astype(str),
            "title": raw["title"].fillna("").astype(str),
            "published_at": published,
        }
    )
    frame = frame[~(frame["published_at"] >= as_of)]
    reason = given.loc[frame.index].replace("", pd.NA).astype("string")
    path_ids = article_ids_for_paths(frame["path"].astype("string"), site)
    age_days = (as_of - frame["published_at"]).dt.total_seconds() / 86400
    for mask, name in (
        (path_ids.isna(), "failed_site_validation"),
        (frame["published_at"].isna(), "no_publish_date"),
        (age_days > site.training.article_age_limit_days, "too_old"),
        (frame["external_id"].duplicated(keep="last"), "duplicate_external_id"),
    ):
        reason = reason.mask(mask & reason.isna(), name)
    frame["exclude_reason"] = reason
    frame = frame.sort_values("external_id", kind="stable").reset_index(drop=True)
    for name in ("external_id", "path", "title"):
        frame[name] = frame[name].astype("string")
    return frame[list(CATALOGUE_COLUMNS)]


def recommendable(catalogue: pd.DataFrame) -> pd.DataFrame:
    return catalogue[catalogue["exclude_reason"].isna()]

"""Article recommendations: top-k similar articles per article, and the popularity fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd

from article_rec_assets.catalogue.snapshot import recommendable
from article_rec_assets.recommenders.als import ArticleEmbeddings
from article_rec_assets.recommenders.top_k import top_k_similar
from article_rec_assets.settings.sites import RecommendationSettings

ARTICLE_MODEL = "article"
POPULARITY_MODEL = "popularity"
POPULARITY_SOURCE = "default"  # the API's source_entity_id for the fallback list
RECOMMENDATION_COLUMNS = ("model_type", "source_entity_id", "recommended_external_id", "score", "rank")


def freshness(published_at: pd.Series, as_of: pd.Timestamp, half_life_days: float) -> np.ndarray:
    """0.5 ** (age_days / half_life): 1 for an article published at `as_of`."""
    age_days = ((as_of - published_at).dt.total_seconds() / 86400).clip(lower=0)
    return np.power(0.5, age_days.to_numpy(dtype=np.float64) / half_life_days)


def similar_articles(
    embeddings: ArticleEmbeddings,
    catalogue: pd.DataFrame,
    settings: RecommendationSettings,
) -> pd.DataFrame:
    """For each embedded article, the k best other articles by rescaled cosine x freshness.

    Candidates are ranked by the final score (not by cosine first), so a fresh, close article
    beats a stale, slightly closer one. Only recommendable catalogue articles take part.
    """
    candidates = recommendable(catalogue).set_index("external_id")
    # A hash lookup: np.isin on object arrays compares every pair (minutes for 25k articles).
    keep = np.asarray(pd.Index(embeddings.article_ids).isin(candidates.index))
    ids = embeddings.article_ids[keep]
    vectors = embeddings.vectors[keep].astype(np.float32)
    k = min(settings.per_article, len(ids) - 1)
    if k <= 0:
        return _empty()
    fresh = freshness(
        candidates.loc[ids, "published_at"], embeddings.as_of, settings.freshness_half_life_days
    ).astype(np.float32)
    target_idx, top_scores = top_k_similar(vectors, k, weights=fresh)
    source_idx = np.repeat(np.arange(len(ids)), k)
    target_idx = target_idx.ravel()
    return pd.DataFrame(
        {
            "model_type": ARTICLE_MODEL,
            "source_entity_id": pd.array(ids[source_idx], dtype="string"),
            "recommended_external_id": pd.array(ids[target_idx], dtype="string"),
            "score": np.round(top_scores.ravel().astype(np.float64), 6),
            "rank": np.tile(np.arange(1, k + 1), len(ids)),
        }
    ).astype({"model_type": "string"})


def article_popularity(interactions: pd.DataFrame, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    """Total reading seconds and distinct readers per article over the last `days`."""
    recent = interactions[
        (interactions["last_seen"] >= as_of - pd.Timedelta(days=days)) & (interactions["first_seen"] < as_of)
    ]
    popularity = (
        recent.groupby("external_id", observed=True)
        .agg(engaged_seconds=("engaged_seconds", "sum"), readers=("reader_id", "nunique"))
        .reset_index()
        .sort_values(["engaged_seconds", "external_id"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    popularity["external_id"] = popularity["external_id"].astype("string")
    popularity["readers"] = popularity["readers"].astype("int64")
    popularity["engaged_seconds"] = popularity["engaged_seconds"].astype("float64")
    return popularity


def popularity_recommendations(
    popularity: pd.DataFrame,
    catalogue: pd.DataFrame,
    as_of: pd.Timestamp,
    settings: RecommendationSettings,
) -> pd.DataFrame:
    """The fallback list: the most-read recommendable articles, decayed by publish date."""
    candidates = recommendable(catalogue)[["external_id", "published_at"]]
    top = popularity.merge(candidates, on="external_id").nlargest(
        settings.popularity_candidates, "engaged_seconds"
    )
    if top.empty:
        return _empty()
    decayed = top["engaged_seconds"].to_numpy() * freshness(
        top["published_at"], as_of, settings.popularity_half_life_days
    )
    top = top.assign(score=decayed / decayed.max()).sort_values(
        ["score", "external_id"], ascending=[False, True], kind="stable"
    )
    return pd.DataFrame(
        {
            "model_type": POPULARITY_MODEL,
            "source_entity_id": POPULARITY_SOURCE,
            "recommended_external_id": top["external_id"].to_numpy(),
            "score": np.round(top["score"].to_numpy(dtype=np.float64), 6),
            "rank": np.arange(1, len(top) + 1),
        }
    ).astype({"model_type": "string", "source_entity_id": "string", "recommended_external_id": "string"})


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_type": pd.Series(dtype="string"),
            "source_entity_id": pd.Series(dtype="string"),
            "recommended_external_id": pd.Series(dtype="string"),
            "score": pd.Series(dtype="float64"),
            "rank": pd.Series(dtype="int64"),
        }
    )


def recommendation_problems(recs: pd.DataFrame, catalogue: pd.DataFrame) -> list[str]:
    """Why a set of recommendations must not be published (empty list: fine to publish)."""
    problems = []
    for model_type in (ARTICLE_MODEL, POPULARITY_MODEL):
        if not (recs["model_type"] == model_type).any():
            problems.append(f"no {model_type} recommendations")
    if len(recs) and not recs["score"].between(0, 1).all():
        problems.append(f"{int((~recs['score'].between(0, 1)).sum())} scores outside [0, 1]")
    if (recs["source_entity_id"] == recs["recommended_external_id"]).any():
        problems.append("an article recommends itself")
    known = set(recommendable(catalogue)["external_id"])
    unknown = ~recs["recommended_external_id"].isin(known)
    if unknown.any():
        problems.append(f"{int(unknown.sum())} recommended articles are not recommendable catalogue articles")
    if recs.duplicated(["model_type", "source_entity_id", "recommended_external_id"]).any():
        problems.append("duplicate (source, recommended) pairs")
    return problems

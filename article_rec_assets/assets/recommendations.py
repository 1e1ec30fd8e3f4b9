"""Recommendations: the article model's lists, the popularity fallback, and the backtest that must
approve them before they are published."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from article_rec_assets.assets import concat_partitions, partition_site_and_window, preview, trailing_input
from article_rec_assets.assets.training import CLICK_COLUMNS, SESSION_DAYS
from article_rec_assets.evaluation.backtest import METRICS, backtest
from article_rec_assets.evaluation.metrics import markdown_table
from article_rec_assets.ingestion.sessions import empty_interactions
from article_rec_assets.partitions import SITES, site_window_partitions, trailing_windows, window_check
from article_rec_assets.publishing.api import current_model
from article_rec_assets.recommenders.article_model import (
    MODEL_NAME,
    ArticleModel,
    article_model_recommendations,
    candidate_mask,
    known_at_start,
    site_click_log,
    window_als,
)
from article_rec_assets.recommenders.baselines import LastHourPopularity
from article_rec_assets.recommenders.serving import article_popularity as compute_popularity
from article_rec_assets.recommenders.serving import popularity_recommendations, recommendation_problems
from article_rec_assets.resources import ServingDatabase
from article_rec_assets.schemas import ArticlePopularityType, ArticleRecommendationsType

POPULARITY_DAYS = max(site.recommendations.popularity_days for site in SITES.values())


@asset(
    partitions_def=site_window_partitions,
    group_name="recommendations",
    io_manager_key="table_io_manager",
    dagster_type=ArticlePopularityType,
    ins={
        "sessionized_interactions": trailing_input(
            trailing_windows(POPULARITY_DAYS),
            ["reader_id", "external_id", "engaged_seconds", "first_seen", "last_seen"],
        )
    },
    code_version="1",
    kinds={"pandas"},
)
def article_popularity(
    context: AssetExecutionContext, sessionized_interactions: dict[str, pd.DataFrame]
) -> Output[pd.DataFrame]:
    """Reading seconds and readers per article over the site's popularity window (7 days by default)."""
    site, _, end = partition_site_and_window(context)
    interactions = concat_partitions(sessionized_interactions, empty_interactions())
    popularity = compute_popularity(interactions, end, site.recommendations.popularity_days)
    return Output(
        popularity,
        metadata={
            "dagster/row_count": len(popularity),
            "windows_read": len(sessionized_interactions),
            "preview": preview(popularity),
        },
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="recommendations",
    io_manager_key="table_io_manager",
    dagster_type=ArticleRecommendationsType,
    check_specs=[
        window_check(
            "publishable",
            asset="article_recommendations",
            blocking=True,
            description="Both models present, scores in [0, 1], no self-recommendation, every "
            "article recommendable. A failure stops publishing; the published model keeps serving.",
        )
    ],
    code_version="2",
    kinds={"numpy"},
)
def article_recommendations(
    context: AssetExecutionContext,
    trained_model: ArticleModel,
    article_popularity: pd.DataFrame,
    article_catalogue: pd.DataFrame,
):
    """The article model's top-k per article (scores scaled into [0, 1]) and the popularity list."""
    site, _, end = partition_site_and_window(context)
    settings = site.recommendations
    recs = pd.concat(
        [
            article_model_recommendations(trained_model, settings.per_article),
            popularity_recommendations(article_popularity, article_catalogue, end, settings),
        ],
        ignore_index=True,
    )
    titles = article_catalogue.set_index("external_id")["title"]
    example = recs[recs["source_entity_id"] == recs["source_entity_id"].iloc[0]] if len(recs) else recs
    yield Output(
        recs,
        metadata={
            "dagster/row_count": len(recs),
            "articles_with_recommendations": int(
                recs.loc[recs["model_type"] == "article", "source_entity_id"].nunique()
            ),
            "popularity_recommendations": int((recs["model_type"] == "popularity").sum()),
            "mean_score": float(recs["score"].mean()) if len(recs) else 0.0,
            "example": MetadataValue.md(
                example.assign(title=example["recommended_external_id"].map(titles))
                .head(10)
                .to_markdown(index=False)
                if len(example)
                else "_empty_"
            ),
            "preview": preview(recs),
        },
    )
    problems = recommendation_problems(recs, article_catalogue)
    yield AssetCheckResult(
        check_name="publishable",
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else "ready to publish",
        metadata={"problems": MetadataValue.json(problems), "rows": len(recs)},
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="recommendations",
    io_manager_key="table_io_manager",
    ins={
        # The window itself, and the model's training days before its start.
        "sessionized_interactions": trailing_input(
            trailing_windows(SESSION_DAYS, extra_windows=1), CLICK_COLUMNS
        )
    },
    check_specs=[
        window_check(
            "approved",
            asset="recommendation_backtest",
            blocking=True,
            description="The model, trained on the reading before this window, scores at least as "
            "well as last-hour popularity on the window's reading pairs, and not more than the site's "
            "margin below the model currently published. A failure stops publishing; the published "
            "model keeps serving.",
        )
    ],
    code_version="2",
    kinds={"pandas"},
)
def recommendation_backtest(
    context: AssetExecutionContext,
    serving_database: ServingDatabase,
    sessionized_interactions: dict[str, pd.DataFrame],
    article_catalogue: pd.DataFrame,
):
    """The article model trained on the reading up to the start of this window, asked for the
    next article of every reading pair (a -> b) inside it; the same for last-hour popularity,
    successor counts and the lists published now. HR@10, MRR@10, NDCG@10, coverage and fallback
    share per recommender (plotted over time in the asset's metadata)."""
    site, start, end = partition_site_and_window(context)
    frames = dict(sessionized_interactions)
    window = frames.pop(str(context.partition_key), empty_interactions())
    interactions = known_at_start(concat_partitions(frames, empty_interactions()), window, start)
    log = site_click_log(interactions, article_catalogue)
    engine = serving_database.engine()
    try:
        current = current_model(engine, site.name, "article")
    finally:
        engine.dispose()
    # Compare with the published model only if it had not seen this window (a rerun or a
    # backfill of an older window finds a model trained on later data).
    published, published_note = None, "none published"
    if current is not None:
        if current.trained_until is not None and current.trained_until <= start:
            published = current.rows
            published_note = f"model {current.model_id}, trained until {current.trained_until:%Y-%m-%d %H:%M}"
        else:
            until = f"{current.trained_until:%Y-%m-%d %H:%M}" if current.trained_until else "an unknown time"
            published_note = (
                f"model {current.model_id} not compared: trained until {until}, after this window began"
            )
    result = backtest(
        log,
        candidate_mask(log, article_catalogue, start),
        start,
        end,
        site.model,
        site.evaluation,
        published=published,
        # ALS as the offline evaluation trains it (on the clicks before the window): the
        # trained_model's ALS has seen the window.
        embed=(lambda train: window_als(train, site.training, site.model))
        if site.model.als_weight > 0
        else None,
        freshness_half_life_days=site.recommendations.freshness_half_life_days,
    )
    metrics = result.metrics
    numbers = {}
    for row in metrics.to_dict("records"):
        label = "model" if row["recommender"] == MODEL_NAME else row["recommender"]
        for metric in METRICS:
            numbers[f"{metric} {label}"] = round(float(row[metric]), 4)
    # Dagster plots each numeric key over all materializations of the asset (every site mixed)
    # and one series per chart: so, per site, the judged metric of the model and the baseline,
    # and their ratio, which puts model and baseline on one chart (above 1: the model wins).
    judged, baseline = site.evaluation.metric, LastHourPopularity.name
    if f"{judged} model" in numbers and f"{judged} {baseline}" in numbers:
        model_score, baseline_score = numbers[f"{judged} model"], numbers[f"{judged} {baseline}"]
        numbers[f"{site.name}: {judged} model"] = model_score
        numbers[f"{site.name}: {judged} {baseline}"] = baseline_score
        if baseline_score > 0:
            numbers[f"{site.name}: {judged} model / {baseline}"] = round(model_score / baseline_score, 4)
    yield Output(
        metrics,
        metadata={
            "pairs": int(metrics["pairs"].iloc[0]) if len(metrics) else 0,
            "training_clicks": result.train_clicks,
            "window_interactions": len(window),
            "published_model": published_note,
            **numbers,
            "backtest_seconds": round(result.seconds, 3),
            "metrics": MetadataValue.md(markdown_table(metrics.assign(day=""))),
            "verdict": result.reason,
        },
    )
    # Too few pairs to judge: a visible warning (a failed WARN check does not block publishing).
    yield AssetCheckResult(
        check_name="approved",
        passed=result.passed and result.judged,
        severity=AssetCheckSeverity.ERROR if result.judged else AssetCheckSeverity.WARN,
        description=result.reason,
        metadata={
            "judged": result.judged,
            "metric": site.evaluation.metric,
            "min_pairs": site.evaluation.min_pairs,
            "max_drop_vs_published": site.evaluation.max_drop_vs_published,
            "published_model": published_note,
        },
    )

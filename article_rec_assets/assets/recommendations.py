"""Recommendations: the article model's lists, the popularity fallback, and the backtest that must
approve them before they are published; one value per site, as of the window the model was
trained as of."""

from functools import partial

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    MetadataValue,
    Output,
    asset,
)

from article_rec_assets.assets import (
    WindowStore,
    as_of_window,
    concat_partitions,
    model_inputs,
    preview,
    trailing_interactions,
    trailing_window_keys,
    window_bounds,
    window_of_store,
)
from article_rec_assets.assets.training import fit_site_model, window_click_log
from article_rec_assets.evaluation.backtest import BACKTEST_K, METRICS, backtest
from article_rec_assets.evaluation.metrics import markdown_table
from article_rec_assets.ingestion.sessions import empty_interactions
from article_rec_assets.partitions import SITES, site_key, site_pool, site_prefix, window_check
from article_rec_assets.publishing.api import current_model
from article_rec_assets.recommenders.article_model import (
    MODEL_NAME,
    ArticleModel,
    article_model_recommendations,
    candidate_mask,
    reuse_problem,
)
from article_rec_assets.recommenders.baselines import LastHourPopularity
from article_rec_assets.recommenders.lists import article_popularity as compute_popularity
from article_rec_assets.recommenders.lists import popularity_recommendations, recommendation_problems
from article_rec_assets.resources import ServingDatabase
from article_rec_assets.schemas import ArticlePopularityType, ArticleRecommendationsType
from article_rec_assets.settings.windows import window_key_before

POPULARITY_COLUMNS = ["reader_id", "external_id", "engaged_seconds", "first_seen", "last_seen"]


def build(name: str) -> list[AssetsDefinition]:
    key = partial(site_key, name)
    common = {"group_name": site_prefix(name), "pool": site_pool(name)}

    @asset(
        key=key("article_popularity"),
        deps=model_inputs(name)[:1],
        io_manager_key="table_io_manager",
        dagster_type=ArticlePopularityType,
        code_version="1",
        kinds={"pandas"},
        **common,
    )
    def article_popularity(
        context: AssetExecutionContext, table_io_manager: WindowStore
    ) -> Output[pd.DataFrame]:
        """Reading seconds and readers per article over the site's popularity window (7 days by default)."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        _, end = window_bounds(as_of)
        keys = trailing_window_keys(as_of, site.recommendations.popularity_days)
        frames = trailing_interactions(context, table_io_manager, name, keys, POPULARITY_COLUMNS)
        interactions = concat_partitions(frames, empty_interactions())
        popularity = compute_popularity(interactions, end, site.recommendations.popularity_days)
        return Output(
            popularity,
            metadata={
                "window": as_of,
                "dagster/row_count": len(popularity),
                "windows_read": len(frames),
                "preview": preview(popularity),
            },
        )

    @asset(
        key=key("article_recommendations"),
        deps=model_inputs(name)[1:],
        io_manager_key="table_io_manager",
        dagster_type=ArticleRecommendationsType,
        check_specs=[
            window_check(
                "publishable",
                key("article_recommendations"),
                "Both models present, scores in [0, 1], no self-recommendation, every article "
                "recommendable. A failure stops publishing; the published model keeps serving.",
                None,
                blocking=True,
            )
        ],
        code_version="2",
        kinds={"numpy"},
        **common,
    )
    def article_recommendations(
        context: AssetExecutionContext,
        table_io_manager: WindowStore,
        trained_model: ArticleModel,
        article_popularity: pd.DataFrame,
    ):
        """The article model's top-k per article (scores scaled into [0, 1]) and the popularity list."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        _, end = window_bounds(as_of)
        article_catalogue = window_of_store(table_io_manager, key("article_catalogue"), as_of, context.log)
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
                "window": as_of,
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
            metadata={"window": as_of, "problems": MetadataValue.json(problems), "rows": len(recs)},
        )

    @asset(
        key=key("recommendation_backtest"),
        # trained_model: its stored value of the window before this one (see `_model_before`).
        deps=[*model_inputs(name), key("trained_model")],
        io_manager_key="table_io_manager",
        check_specs=[
            window_check(
                "approved",
                key("recommendation_backtest"),
                "The model, trained on the reading before the window, scores at least as well as "
                "last-hour popularity on the window's reading pairs, and not more than the site's "
                "margin below the model currently published. A failure stops publishing; the "
                "published model keeps serving.",
                None,
                blocking=True,
            )
        ],
        code_version="2",
        kinds={"pandas"},
        **common,
    )
    def recommendation_backtest(
        context: AssetExecutionContext,
        serving_database: ServingDatabase,
        table_io_manager: WindowStore,
        io_manager: WindowStore,
    ):
        """The article model trained on the reading up to the start of the window (the stored
        `trained_model` of the window before, fitted again only where it is not stored), asked for
        the next article of every reading pair (a -> b) inside it; the same for last-hour popularity,
        successor counts and the lists published now. HR@10, MRR@10, NDCG@10, coverage and fallback
        share per recommender (plotted over time in the asset's metadata)."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        as_of = as_of_window(context, name)
        start, end = window_bounds(as_of)
        article_catalogue = window_of_store(table_io_manager, key("article_catalogue"), as_of, context.log)
        model, model_note = _model_before(context, table_io_manager, io_manager, name, as_of)
        # The window itself, and the model's training days before its start.
        log, _ = window_click_log(context, table_io_manager, name, as_of)
        engine = serving_database.engine()
        try:
            current = current_model(engine, name, "article")
        finally:
            engine.dispose()
        # Compare with the published model only if it had not seen this window (a rerun or a
        # backfill of an older window finds a model trained on later data).
        published, published_note = None, "none published"
        if current is not None:
            if current.trained_until is not None and current.trained_until <= start:
                published = current.rows
                published_note = (
                    f"model {current.model_id}, trained until {current.trained_until:%Y-%m-%d %H:%M}"
                )
            else:
                until = (
                    f"{current.trained_until:%Y-%m-%d %H:%M}" if current.trained_until else "an unknown time"
                )
                published_note = (
                    f"model {current.model_id} not compared: trained until {until}, after this window began"
                )
        result = backtest(
            log,
            candidate_mask(log, article_catalogue, start),
            start,
            end,
            model,
            site.model.session_days,
            site.evaluation,
            published=published,
        )
        metrics = result.metrics
        numbers = {}
        for row in metrics.to_dict("records"):
            label = "model" if row["recommender"] == MODEL_NAME else row["recommender"]
            for metric in METRICS:
                numbers[f"{metric} {label}"] = round(float(row[metric]), 4)
        # Dagster plots each numeric key over the asset's materializations (this site's windows),
        # one series per chart: the ratio puts model and baseline on one chart (above 1: the model wins).
        judged, baseline = site.evaluation.metric, LastHourPopularity.name
        if numbers.get(f"{judged} {baseline}", 0) > 0 and f"{judged} model" in numbers:
            numbers[f"{judged} model / {baseline}"] = round(
                numbers[f"{judged} model"] / numbers[f"{judged} {baseline}"], 4
            )
        yield Output(
            metrics,
            metadata={
                "window": as_of,
                "pairs": int(metrics["pairs"].iloc[0]) if len(metrics) else 0,
                "training_clicks": result.train_clicks,
                "window_clicks": int(
                    ((log.timestamp >= start.value // 10**6) & (log.timestamp < end.value // 10**6)).sum()
                ),
                "model": model_note,
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
                "window": as_of,
                "judged": result.judged,
                "metric": site.evaluation.metric,
                # The site's settings, as text: Dagster plots every number over the windows.
                "min_pairs": MetadataValue.text(f"{site.evaluation.min_pairs:,}"),
                "max_drop_vs_published": MetadataValue.text(f"{site.evaluation.max_drop_vs_published:.1%}"),
                "published_model": published_note,
            },
        )

    return [article_popularity, article_recommendations, recommendation_backtest]


def _model_before(
    context: AssetExecutionContext, store, model_store, name: str, as_of: str
) -> tuple[ArticleModel | None, str]:
    """The model the backtest of window `as_of` evaluates: trained as of the window before (so
    on nothing of this window), the stored `trained_model` where it is what a fit would give now,
    else fitted here the same way; None where that window was never ingested."""
    site = SITES[name]
    previous = window_key_before(as_of)
    start, _ = window_bounds(as_of)
    stored = model_store.load_windows(site_key(name, "trained_model"), [previous], context.log)
    problem = reuse_problem(stored.get(previous), site.model, start, BACKTEST_K)
    if problem is None:
        return stored[previous], f"trained_model of window {previous} (stored)"
    # A window before that was never ingested (the schedule skipped it) has no catalogue: this
    # window's stands in (an article it adds had no reading before the window, so no list).
    catalogue_window = previous
    if previous not in store.load_windows(site_key(name, "article_catalogue"), [previous], context.log):
        catalogue_window = as_of
    model, read = fit_site_model(context, store, model_store, name, previous, catalogue_window)
    if read["windows_read"] == 0 or not len(model.list_sources):
        return None, f"none: no reading was ingested before window {as_of}"
    return model, f"fitted here as of window {previous}: the stored one could not serve ({problem})"

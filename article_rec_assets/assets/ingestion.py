"""Ingestion: raw events from the event bucket (with the lines set aside), and the reading
sessions made of them."""

import time
from datetime import timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    Backoff,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    multi_asset,
)

from article_rec_assets.assets import partition_site_and_window, preview
from article_rec_assets.logic.ingestion import clean_window, parse_objects
from article_rec_assets.logic.sessions import sessionize
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.resources import EventBucket
from article_rec_assets.schemas import (
    QuarantinedEventLinesType,
    RawEventsType,
    SessionizedInteractionsType,
)

MALFORMED_WARN = "malformed_share_below_warn_threshold"
MALFORMED_BLOCK = "malformed_share_below_block_threshold"


@multi_asset(
    outs={
        "raw_events": AssetOut(
            io_manager_key="table_io_manager",
            dagster_type=RawEventsType,
            description="The window's Snowplow events, once each, with reader, session, page and the "
            "reading seconds each ping adds. Empty or missing hour folders make an empty window.",
            code_version="2",
            kinds={"s3", "pandas"},
        ),
        "quarantined_event_lines": AssetOut(
            io_manager_key="table_io_manager",
            dagster_type=QuarantinedEventLinesType,
            description="Every line of the window's objects that is not a usable event, with its object, "
            "line number, reason and first 500 characters.",
            code_version="2",
            kinds={"pandas"},
        ),
    },
    partitions_def=site_window_partitions,
    group_name="ingestion",
    check_specs=[
        AssetCheckSpec(
            MALFORMED_WARN,
            asset="raw_events",
            description="Share of unusable lines in the window is below the site's warning threshold.",
        ),
        AssetCheckSpec(
            MALFORMED_BLOCK,
            asset="raw_events",
            blocking=True,
            description="Share of unusable lines is below the site's blocking threshold; above it, "
            "nothing downstream of this window runs, so nothing is published from it.",
        ),
    ],
    # botocore already retries each request; this retries the whole read after an outage.
    retry_policy=RetryPolicy(max_retries=2, delay=15, backoff=Backoff.EXPONENTIAL),
)
def ingest_window(context: AssetExecutionContext, event_bucket: EventBucket):
    """Read the window's hour folders, plus the hours before it as context for duplicates."""
    site, start, end = partition_site_and_window(context)
    settings = site.events
    started = time.perf_counter()
    received_before = end + pd.Timedelta(minutes=settings.max_future_minutes)
    window = parse_objects(
        event_bucket.window_objects(site, start.to_pydatetime(), end.to_pydatetime()), received_before
    )
    lookback_start = start - timedelta(hours=settings.lookback_hours)
    lookback = parse_objects(
        event_bucket.window_objects(site, lookback_start.to_pydatetime(), start.to_pydatetime()), start
    )
    parsed_seconds = time.perf_counter() - started
    cleaned = clean_window(window, lookback, settings)
    events, rejects = cleaned.events, window.rejects
    if len(rejects):
        first = rejects.iloc[0]
        context.log.warning(
            f"{len(rejects)} of {window.lines_read} lines quarantined: {window.reject_counts}; first: "
            f"{first['source']} line {first['line_number']} ({first['reason']})"
        )

    share = len(rejects) / window.lines_read if window.lines_read else 0.0
    check_metadata = {
        "malformed_share": round(share, 6),
        "quarantined_lines": len(rejects),
        "lines_read": window.lines_read,
        "warn_threshold": settings.malformed_warn_share,
        "block_threshold": settings.malformed_block_share,
    }
    yield Output(
        events,
        output_name="raw_events",
        metadata={
            "dagster/row_count": len(events),
            "objects_read": window.objects_read,
            "lines_read": window.lines_read,
            "context_objects_read": lookback.objects_read,
            "quarantined_lines": len(rejects),
            "quarantined_by_reason": MetadataValue.json(window.reject_counts),
            "duplicates_dropped": MetadataValue.json(cleaned.duplicates),
            "events_by_name": MetadataValue.json(
                {str(k): int(v) for k, v in events["event_name"].value_counts().sort_index().items()}
            ),
            "read_and_parse_seconds": round(parsed_seconds, 3),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": preview(events),
        },
    )
    yield Output(
        rejects,
        output_name="quarantined_event_lines",
        metadata={
            "dagster/row_count": len(rejects),
            "by_reason": MetadataValue.json(window.reject_counts),
            "preview": preview(rejects),
        },
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=MALFORMED_WARN,
        passed=share <= settings.malformed_warn_share,
        severity=AssetCheckSeverity.WARN,
        metadata=check_metadata,
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=MALFORMED_BLOCK,
        passed=share <= settings.malformed_block_share,
        severity=AssetCheckSeverity.ERROR,
        description=f"{share:.2%} of the window's lines are unusable "
        f"(blocking above {settings.malformed_block_share:.0%})",
        metadata=check_metadata,
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="ingestion",
    io_manager_key="table_io_manager",
    dagster_type=SessionizedInteractionsType,
    code_version="2",
    kinds={"pandas"},
)
def sessionized_interactions(
    context: AssetExecutionContext, raw_events: pd.DataFrame
) -> Output[pd.DataFrame]:
    """Reading time per (reader, session, article, day) from the window's page views and pings,
    after dropping bots, staging hosts, non-article pages and events read too late."""
    site, _, _ = partition_site_and_window(context)
    result = sessionize(raw_events, site)
    interactions = result.interactions
    return Output(
        interactions,
        metadata={
            "dagster/row_count": len(interactions),
            "readers": int(interactions["reader_id"].nunique()),
            "articles": int(interactions["external_id"].nunique()),
            "engaged_seconds": float(interactions["engaged_seconds"].sum()),
            "ping_dwell_seconds": float(interactions["ping_dwell_seconds"].sum()),
            "events_filtered": MetadataValue.json(result.filtered),
            "preview": preview(interactions),
        },
    )

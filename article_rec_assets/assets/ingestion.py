"""Ingestion: raw events from the event bucket, and the reading sessions made of them."""

import time

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from article_rec_assets.assets import partition_site_and_window, preview
from article_rec_assets.logic.ingestion import parse_objects
from article_rec_assets.logic.sessions import sessionize
from article_rec_assets.partitions import site_window_partitions
from article_rec_assets.resources import EventBucket
from article_rec_assets.schemas import RawEventsType, SessionizedInteractionsType


@asset(
    partitions_def=site_window_partitions,
    group_name="ingestion",
    io_manager_key="table_io_manager",
    dagster_type=RawEventsType,
    code_version="1",
    kinds={"s3", "pandas"},
)
def raw_events(context: AssetExecutionContext, event_bucket: EventBucket) -> Output[pd.DataFrame]:
    """Every Snowplow event in the window's two hour folders. An empty or missing folder is an
    empty window; a line that is not a usable event is counted by reason and skipped."""
    site, start, end = partition_site_and_window(context)
    started = time.perf_counter()
    parsed = parse_objects(event_bucket.window_objects(site, start.to_pydatetime(), end.to_pydatetime()))
    seconds = time.perf_counter() - started
    if len(parsed.rejects):
        context.log.warning(
            f"{len(parsed.rejects)} of {parsed.lines_read} lines rejected: {parsed.reject_counts}; "
            f"first: {parsed.rejects.iloc[0].to_dict()}"
        )
    events = parsed.events
    return Output(
        events,
        metadata={
            "dagster/row_count": len(events),
            "objects_read": parsed.objects_read,
            "lines_read": parsed.lines_read,
            "rejected_lines": len(parsed.rejects),
            "rejected_by_reason": MetadataValue.json(parsed.reject_counts),
            "events_by_name": MetadataValue.json(
                {str(k): int(v) for k, v in events["event_name"].value_counts().items()}
            ),
            "parse_seconds": round(seconds, 3),
            "preview": preview(events),
        },
    )


@asset(
    partitions_def=site_window_partitions,
    group_name="ingestion",
    io_manager_key="table_io_manager",
    dagster_type=SessionizedInteractionsType,
    code_version="1",
    kinds={"pandas"},
)
def sessionized_interactions(
    context: AssetExecutionContext, raw_events: pd.DataFrame
) -> Output[pd.DataFrame]:
    """Reading time per (reader, session, article, day) from the window's page views and pings."""
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
            "dropped_events": MetadataValue.json(result.dropped),
            "preview": preview(interactions),
        },
    )

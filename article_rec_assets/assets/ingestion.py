"""Ingestion: raw events from the event bucket (with the lines set aside), and the reading
sessions made of them."""

import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetRecordsFilter,
    Backoff,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    multi_asset,
)

from article_rec_assets.assets import partition_site_and_window, preview
from article_rec_assets.ingestion.ga4 import read_ga4_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.ingestion.state import carried_state
from article_rec_assets.ingestion.window import (
    context_windows,
    delivered_events,
    ingest_events,
    state_windows,
)
from article_rec_assets.ingestion.window_checks import (
    freshness_verdict,
    latest_time,
    malformed_verdicts,
    volume_verdict,
)
from article_rec_assets.partitions import (
    SITES,
    earlier_windows,
    site_window_key,
    site_window_partitions,
    window_check,
)
from article_rec_assets.resources import EventBucket
from article_rec_assets.schemas import (
    DeliveredEventsType,
    QuarantinedEventLinesType,
    RawEventsType,
    ReadingStateType,
    SessionizedInteractionsType,
)
from article_rec_assets.settings.sites import EventSettings, SiteConfig
from article_rec_assets.settings.windows import WINDOW_HOURS, parse_window

MALFORMED_WARN = "malformed_share_below_warn_threshold"
MALFORMED_BLOCK = "malformed_share_below_block_threshold"
VOLUME = "volume_like_earlier_days"
FRESHNESS = "events_are_fresh"

# Earlier windows a window reads from storage, for the site that reaches back furthest (each site
# uses its own settings' share): its lookback's `delivered_events`, and `reading_state` over
# `max_session_days`.
CONTEXT_WINDOWS = max(context_windows(s.events) for s in SITES.values())
STATE_WINDOWS = max(state_windows(s.events) for s in SITES.values())


@multi_asset(
    ins={
        "earlier_deliveries": AssetIn(
            "delivered_events",
            partition_mapping=earlier_windows(CONTEXT_WINDOWS),
            metadata={"allow_missing_partitions": True},
        ),
        "earlier_states": AssetIn(
            "reading_state",
            partition_mapping=earlier_windows(STATE_WINDOWS),
            metadata={"allow_missing_partitions": True},
        ),
    },
    # The lineage Dagster is told: self-dependencies only, so a backfill runs a site's windows
    # oldest first. (The window's events read the earlier deliveries and state too, but an edge
    # from one output to another over earlier windows makes a backfill of some windows target
    # other windows for some outputs, which Dagster refuses for a multi-asset; an input must feed
    # some output, so the earlier deliveries are shown feeding the deliveries. The raw_events
    # metadata says what each window read.)
    internal_asset_deps={
        "delivered_events": {AssetKey("delivered_events")},
        "reading_state": {AssetKey("reading_state")},
        "raw_events": set(),
        "quarantined_event_lines": set(),
    },
    outs={
        "delivered_events": AssetOut(
            io_manager_key="table_io_manager",
            dagster_type=DeliveredEventsType,
            description="Every event the window's hour folders delivered, once each, as parsed: the "
            "next windows' context (duplicates, sessions, heartbeats), so no object is parsed twice.",
            code_version="1",
            kinds={"pandas"},
        ),
        "reading_state": AssetOut(
            io_manager_key="table_io_manager",
            dagster_type=ReadingStateType,
            description="What the window hands on beyond the lookback: each session's start and each "
            "page view credited with reading time, so later windows credit and filter exactly.",
            code_version="1",
            kinds={"pandas"},
        ),
        "raw_events": AssetOut(
            io_manager_key="table_io_manager",
            dagster_type=RawEventsType,
            description="The window's Snowplow events, once each, with reader, session, page and the "
            "reading seconds each ping adds. Empty or missing hour folders make an empty window.",
            # 4: context and state carried from the earlier windows' outputs.
            code_version="4",
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
    # Every check is partitioned like its asset: each result belongs to the window it judged,
    # and a failed window stays failed in the UI until that window passes.
    check_specs=[
        window_check(
            MALFORMED_WARN,
            asset="raw_events",
            description="Share of unusable lines in the window is below the site's warning threshold "
            "(`malformed_warn_share`). Judged only from `malformed_min_lines` lines on: below that, "
            "one bad line would be a large share, so the check passes and says so.",
        ),
        window_check(
            MALFORMED_BLOCK,
            asset="raw_events",
            blocking=True,
            description="Share of unusable lines is below the site's blocking threshold "
            "(`malformed_block_share`); above it, nothing downstream of this window runs, so nothing "
            "is published from it. Judged only from `malformed_min_lines` lines on (fewer pass).",
        ),
        window_check(
            VOLUME,
            asset="raw_events",
            blocking=True,
            description="Events in the window against the median of the same window on the previous "
            "days (`volume_history_days`): below `volume_warn_share` of it warns; an empty window "
            "where traffic was expected fails and blocks publishing.",
        ),
        window_check(
            FRESHNESS,
            asset="raw_events",
            description="The site's newest event is at most `freshness_hours` old at the window's end "
            "(this window or an earlier one): else the tracker or the loader has stopped.",
        ),
    ],
    # botocore already retries each request; this retries the whole read after an outage.
    retry_policy=RetryPolicy(max_retries=2, delay=15, backoff=Backoff.EXPONENTIAL),
)
def ingest_window(
    context: AssetExecutionContext,
    event_bucket: EventBucket,
    earlier_deliveries: dict[str, pd.DataFrame],
    earlier_states: dict[str, pd.DataFrame],
):
    """Read the window's hour folders; the hours before it (for duplicates and heartbeats) come
    from the earlier windows' stored deliveries, or from the bucket where those are missing."""
    site, start, end = partition_site_and_window(context)
    settings = site.events
    started = time.perf_counter()
    oldest_state = start - pd.Timedelta(hours=WINDOW_HOURS * state_windows(settings))
    states = [frame for key, frame in sorted(earlier_states.items()) if _window_start(key) >= oldest_state]
    if settings.reads_ga4(start.to_pydatetime()):
        earlier_deliveries.clear()  # GA4 windows read their day's tables, not the hour folders
        read = _read_ga4(event_bucket, site, start, end, states)
    else:
        read = _read_snowplow(event_bucket, site, start, end, earlier_deliveries, states)
    events, rejects = read.events, read.rejects
    if len(rejects):
        first = rejects.iloc[0]
        context.log.warning(
            f"{len(rejects)} of {read.lines_read} lines quarantined: {_reason_counts(rejects)}; first: "
            f"{first['source']} line {first['line_number']} ({first['reason']})"
        )

    newest = events["collector_tstamp"].max() if len(events) else None
    history = earlier_windows_metadata(context, site.name, start, settings)
    # Like with like: a GA4 window has no pings, so it is not judged by a Snowplow day's count.
    same_window = [
        int(m["dagster/row_count"].value)
        for when, m in history.items()
        if when.time() == start.time()
        and when < start
        and "dagster/row_count" in m
        and _source_of(m) == read.source
    ]
    volume = volume_verdict(len(events), same_window, settings.volume_warn_share)
    if newest is None:  # the newest event any earlier window within the limit saw
        newest = latest_time(m["newest_event_at"].value for m in history.values() if "newest_event_at" in m)
    freshness = freshness_verdict(
        None if newest is None else newest.to_pydatetime(),
        end.to_pydatetime(),
        timedelta(hours=settings.freshness_hours),
    )

    share = len(rejects) / read.lines_read if read.lines_read else 0.0
    malformed_warn, malformed_block = malformed_verdicts(read.lines_read, len(rejects), settings)
    check_metadata = {
        "malformed_share": round(share, 6),
        "quarantined_lines": len(rejects),
        "lines_read": read.lines_read,
        "min_lines_judged": settings.malformed_min_lines,
        "warn_threshold": settings.malformed_warn_share,
        "block_threshold": settings.malformed_block_share,
    }
    deliveries = read.deliveries
    yield Output(
        deliveries,
        output_name="delivered_events",
        metadata={"dagster/row_count": len(deliveries), "preview": preview(deliveries)},
    )
    del deliveries
    state = read.state
    yield Output(
        state,
        output_name="reading_state",
        metadata={
            "dagster/row_count": len(state),
            "sessions": int((state["kind"] == "session").sum()),
            "page_views": int((state["kind"] == "page_view").sum()),
        },
    )
    yield Output(
        events,
        output_name="raw_events",
        metadata={
            "dagster/row_count": len(events),
            "source": read.source,
            "objects_read": read.objects_read,
            "lines_read": read.lines_read,
            **read.metadata,
            "state_windows_read": len(states),
            "quarantined_lines": len(rejects),
            "quarantined_by_reason": MetadataValue.json(_reason_counts(rejects)),
            "duplicates_dropped": MetadataValue.json(read.duplicates),
            "events_by_name": MetadataValue.json(
                {str(k): int(v) for k, v in events["event_name"].value_counts().sort_index().items()}
            ),
            # Only where there are events: the freshness check of later windows reads it.
            **({"newest_event_at": str(events["collector_tstamp"].max())} if len(events) else {}),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": preview(events),
        },
    )
    yield Output(
        rejects,
        output_name="quarantined_event_lines",
        metadata={
            "dagster/row_count": len(rejects),
            "by_reason": MetadataValue.json(_reason_counts(rejects)),
            "preview": preview(rejects),
        },
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=MALFORMED_WARN,
        passed=malformed_warn.passed,
        severity=AssetCheckSeverity.WARN,
        description=malformed_warn.description,
        metadata=check_metadata,
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=MALFORMED_BLOCK,
        passed=malformed_block.passed,
        severity=AssetCheckSeverity.ERROR,
        description=malformed_block.description,
        metadata=check_metadata,
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=VOLUME,
        passed=volume.passed,
        severity=AssetCheckSeverity.ERROR if volume.blocking else AssetCheckSeverity.WARN,
        description=volume.description,
        metadata={"events": len(events), "same_window_earlier_days": MetadataValue.json(same_window)},
    )
    yield AssetCheckResult(
        asset_key="raw_events",
        check_name=FRESHNESS,
        passed=freshness.passed,
        severity=AssetCheckSeverity.ERROR,
        description=freshness.description,
        metadata={"freshness_hours": settings.freshness_hours},
    )


@dataclass
class _WindowIngest:
    """A window read from either source, as the outputs and checks need it."""

    source: str
    events: pd.DataFrame
    rejects: pd.DataFrame
    deliveries: pd.DataFrame
    state: pd.DataFrame
    lines_read: int
    objects_read: int
    duplicates: dict[str, int]
    metadata: dict[str, object]


def _read_snowplow(
    event_bucket: EventBucket,
    site: SiteConfig,
    start: pd.Timestamp,
    end: pd.Timestamp,
    earlier_deliveries: dict[str, pd.DataFrame],
    states: list[pd.DataFrame],
) -> _WindowIngest:
    by_start = {_window_start(key): frame for key, frame in earlier_deliveries.items()}
    earlier_deliveries.clear()  # read_window_events drops each once used: they are large
    read, cleaned = ingest_events(
        partial(event_bucket.window_objects, site),
        start.to_pydatetime(),
        end.to_pydatetime(),
        site.events,
        stored=by_start,
        earlier_states=states,
    )
    return _WindowIngest(
        source="snowplow",
        events=cleaned.events,
        rejects=read.window.rejects,
        deliveries=delivered_events(read.window),
        state=cleaned.state,
        lines_read=read.window.lines_read,
        objects_read=read.window.objects_read,
        duplicates=cleaned.duplicates,
        metadata={
            "context_objects_read": read.context.objects_read,
            "context_windows_from_storage": read.context_windows_stored,
            "context_windows_from_bucket": read.context_windows_read,
        },
    )


def _read_ga4(
    event_bucket: EventBucket,
    site: SiteConfig,
    start: pd.Timestamp,
    end: pd.Timestamp,
    states: list[pd.DataFrame],
) -> _WindowIngest:
    window = read_ga4_window(
        partial(event_bucket.folder_keys, site),
        partial(event_bucket.folder_objects, site),
        site.events,
        start.to_pydatetime(),
        end.to_pydatetime(),
        carried_state(states),
    )
    return _WindowIngest(
        source="ga4",
        events=window.events,
        rejects=window.rejects,
        deliveries=delivered_events(parse_objects([])),  # no hour folders for later windows
        state=window.state,
        lines_read=window.lines_read,
        objects_read=window.objects_read,
        duplicates=window.duplicates,
        metadata={
            "ga4_tables": MetadataValue.json(window.tables),
            "other_events_dropped": MetadataValue.json(window.other_events),
            "engagement_unattributed_seconds": window.unattributed_seconds,
            "previous_page_credits": window.previous_page_credits,
        },
    )


def _source_of(metadata: dict) -> str:
    """The source a stored window was read from (windows stored before GA4 came were Snowplow's)."""
    value = metadata.get("source")
    return "snowplow" if value is None else str(value.value)


def _reason_counts(rejects: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in rejects["reason"].value_counts().sort_index().items()}


def _window_start(partition_key: str) -> pd.Timestamp:
    """`<site>|<window start>` -> the window's start (UTC)."""
    return pd.Timestamp(parse_window(partition_key.split("|")[1])[0])


def earlier_windows_metadata(
    context: AssetExecutionContext, site: str, start: pd.Timestamp, settings: EventSettings
) -> dict[pd.Timestamp, dict]:
    """The newest `raw_events` materialization metadata of the site's earlier windows: the same
    window on each of the previous `volume_history_days`, and every window within the freshness
    limit. Read from Dagster's event log (no asset values are loaded)."""
    step = pd.Timedelta(hours=WINDOW_HOURS)
    starts = {start - pd.Timedelta(days=d) for d in range(1, settings.volume_history_days + 1)}
    recent = int(np.ceil(settings.freshness_hours / WINDOW_HOURS))
    starts |= {start - step * i for i in range(1, recent + 1)}
    found: dict[pd.Timestamp, dict] = {}
    for when in sorted(starts):
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=AssetKey("raw_events"),
                asset_partitions=[str(site_window_key(site, when.to_pydatetime()))],
            ),
            limit=1,  # newest first: the window's latest materialization
        ).records
        if records and records[0].asset_materialization is not None:
            found[when] = dict(records[0].asset_materialization.metadata)
    return found


@asset(
    partitions_def=site_window_partitions,
    group_name="ingestion",
    io_manager_key="table_io_manager",
    dagster_type=SessionizedInteractionsType,
    code_version="3",  # 3: the session_too_long filter
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

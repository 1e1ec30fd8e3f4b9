"""Ingestion: a site's raw events from the event bucket (with the lines set aside), and the reading
sessions made of them; one window per run for the schedule, a range of windows for a backfill."""

from collections.abc import Iterable
from datetime import datetime
from functools import partial

import pandas as pd
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetRecordsFilter,
    AssetsDefinition,
    Backoff,
    DagsterInstance,
    Failure,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    multi_asset,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from article_rec_assets.assets import WINDOW_BACKFILL_POLICY, WindowStore, preview, windows_of_run
from article_rec_assets.ingestion.carried import Recorded, content_digest, stored_problem
from article_rec_assets.ingestion.consecutive import (
    SNOWPLOW,
    EventReaders,
    IngestedWindow,
    Stored,
    WindowFigures,
    earlier_figure_starts,
    ingest_consecutive_windows,
)
from article_rec_assets.ingestion.quality_verdicts import Verdict
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.ingestion.state import STATE_DTYPES
from article_rec_assets.ingestion.window_events import CONTEXT_COLUMNS, context_windows, state_windows
from article_rec_assets.io_managers import LazyWindows, StoredGA4Parses, UnreadableWindow, WrittenWindows
from article_rec_assets.partitions import (
    SITES,
    earlier_windows,
    site_key,
    site_pool,
    site_prefix,
    window_check,
    window_key,
    window_partitions,
    window_start,
)
from article_rec_assets.resources import EventBucket
from article_rec_assets.schemas import (
    DELIVERED_EVENTS,
    QUARANTINED_EVENT_LINES,
    RAW_EVENTS,
    READING_STATE,
    SESSIONIZED_INTERACTIONS,
    DeliveredEventsType,
    QuarantinedEventLinesType,
    RawEventsType,
    ReadingStateType,
    SessionizedInteractionsType,
    validate_window,
)

CONTENT_DIGEST = "content_digest"
MALFORMED_WARN = "malformed_share_below_warn_threshold"
MALFORMED_BLOCK = "malformed_share_below_block_threshold"
VOLUME = "volume_like_earlier_days"
FRESHNESS = "events_are_fresh"


def build(name: str) -> list[AssetsDefinition]:
    return [_ingest_window(name), _sessionized_interactions(name)]


def _ingest_window(name: str) -> AssetsDefinition:
    key = partial(site_key, name)
    partitions = window_partitions(name)
    # How far back a window reaches into its earlier windows, for the lineage (read when the
    # definitions load; a changed lookback takes effect on reload).
    settings = SITES[name].events

    @multi_asset(
        name=f"{site_prefix(name)}__ingest_window",
        ins={
            "earlier_deliveries": AssetIn(
                key("delivered_events"),
                partition_mapping=earlier_windows(context_windows(settings)),
                metadata={"by_window": True},
            ),
            "earlier_states": AssetIn(
                key("reading_state"),
                partition_mapping=earlier_windows(state_windows(settings)),
                metadata={"by_window": True},
            ),
        },
        # The lineage Dagster is told: self-dependencies only, so a backfill runs a site's
        # windows oldest first. (The window's events read the earlier deliveries and state too,
        # but an edge from one output to another over earlier windows makes a backfill of some
        # windows target other windows for some outputs, which Dagster refuses for a
        # multi-asset; an input must feed some output, so the earlier deliveries are shown
        # feeding the deliveries. The raw_events metadata says what each window read.)
        internal_asset_deps={
            "delivered_events": {key("delivered_events")},
            "reading_state": {key("reading_state")},
            "raw_events": set(),
            "quarantined_event_lines": set(),
        },
        outs={
            "delivered_events": AssetOut(
                key=key("delivered_events"),
                io_manager_key="table_io_manager",
                dagster_type=DeliveredEventsType,
                description="Every event the window's hour folders delivered, once each, as parsed: "
                "the next windows' context (duplicates, sessions, heartbeats), so no object is parsed "
                "twice.",
                code_version="1",
                kinds={"pandas"},
            ),
            "reading_state": AssetOut(
                key=key("reading_state"),
                io_manager_key="table_io_manager",
                dagster_type=ReadingStateType,
                description="What the window hands on beyond the lookback: each session's start and "
                "each page view credited with reading time, so later windows credit and filter exactly.",
                code_version="1",
                kinds={"pandas"},
            ),
            "raw_events": AssetOut(
                key=key("raw_events"),
                io_manager_key="table_io_manager",
                dagster_type=RawEventsType,
                description="The window's events, once each, with reader, session, page and the "
                "reading seconds each ping adds. Empty or missing hour folders make an empty window.",
                # 4: context and state carried from the earlier windows' outputs.
                code_version="4",
                kinds={"s3", "pandas"},
            ),
            "quarantined_event_lines": AssetOut(
                key=key("quarantined_event_lines"),
                io_manager_key="table_io_manager",
                dagster_type=QuarantinedEventLinesType,
                description="Every line of the window's objects that is not a usable event, with its "
                "object, line number, reason and first 500 characters.",
                code_version="2",
                kinds={"pandas"},
            ),
        },
        partitions_def=partitions,
        group_name=site_prefix(name),
        # Every check is partitioned like its asset: each result belongs to the window it judged,
        # and a failed window stays failed in the UI until that window passes.
        check_specs=[
            window_check(
                MALFORMED_WARN,
                key("raw_events"),
                "Share of unusable lines in the window is below the site's warning threshold "
                "(`malformed_warn_share`). Judged only from `malformed_min_lines` lines on: below that, "
                "one bad line would be a large share, so the check passes and says so.",
                partitions,
            ),
            window_check(
                MALFORMED_BLOCK,
                key("raw_events"),
                "Share of unusable lines is below the site's blocking threshold "
                "(`malformed_block_share`); above it, nothing downstream of this window runs, so "
                "nothing is published from it. Judged only from `malformed_min_lines` lines on.",
                partitions,
                blocking=True,
            ),
            window_check(
                VOLUME,
                key("raw_events"),
                "Events in the window against the median of the same window on the previous days "
                "(`volume_history_days`): below `volume_warn_share` of it warns; an empty window where "
                "traffic was expected fails and blocks publishing.",
                partitions,
                blocking=True,
            ),
            window_check(
                FRESHNESS,
                key("raw_events"),
                "The site's newest event is at most `freshness_hours` old at the window's end (this "
                "window or an earlier one): else the tracker or the loader has stopped.",
                partitions,
            ),
        ],
        backfill_policy=WINDOW_BACKFILL_POLICY,
        pool=site_pool(name),
        # botocore already retries each request; this retries the whole read after an outage.
        retry_policy=RetryPolicy(max_retries=2, delay=15, backoff=Backoff.EXPONENTIAL),
    )
    def ingest_window(
        context: AssetExecutionContext,
        event_bucket: EventBucket,
        table_io_manager: WindowStore,
        earlier_deliveries: LazyWindows,
        earlier_states: LazyWindows,
    ):
        """Read the run's windows oldest first; what each hands on to the next is carried in
        memory, and the windows before the first come from storage (or the bucket)."""
        site = SITES[name]  # read at run time (a test or a reload may change it)
        settings = site.events
        starts = [start.to_pydatetime() for _, start, _ in windows_of_run(context)]
        readers = EventReaders(
            window_objects=partial(event_bucket.window_objects, site),
            folder_keys=partial(event_bucket.folder_keys, site),
            folder_objects=partial(event_bucket.folder_objects, site),
            ga4_parses=StoredGA4Parses(table_io_manager, site_prefix(name)) if settings.ga4 else None,
        )
        checked = partial(_checked, context, table_io_manager)
        # The earlier windows' event counts: the volume check compares the window with them.
        figures_recorded = _NewestMetadata(
            context.instance, key("raw_events"), earlier_figure_starts(starts[0], settings)
        )
        stored = Stored(
            # A stored table that fails its check: the deliveries are read again from the
            # window's hour folders; a reading state cannot be, so the run stops naming it.
            deliveries=checked(
                earlier_deliveries, key("delivered_events"), CONTEXT_COLUMNS, from_bucket=True
            ),
            state=checked(earlier_states, key("reading_state"), tuple(STATE_DTYPES), from_bucket=False),
            figures=partial(_stored_figures, figures_recorded),
        )
        written = {output: WrittenWindows() for output in context.assets_def.keys_by_output_name}
        blocking_failures = []
        for window in ingest_consecutive_windows(starts, settings, readers, stored):
            partition = window_key(window.start)
            tables = {
                "delivered_events": (window.deliveries, DELIVERED_EVENTS, _deliveries_metadata(window)),
                "reading_state": (window.state, READING_STATE, _state_metadata(window)),
                "raw_events": (window.events, RAW_EVENTS, _events_metadata(window)),
                "quarantined_event_lines": (
                    window.rejects,
                    QUARANTINED_EVENT_LINES,
                    _rejects_metadata(window),
                ),
            }
            for output, (frame, schema, metadata) in tables.items():
                validate_window(schema, f"{name} {partition}", frame)
                table_io_manager.write_window(key(output), partition, frame)  # type: ignore[attr-defined]
                context.add_asset_metadata(metadata, asset_key=key(output), partition_key=partition)
                written[output][partition] = len(frame)
            if len(window.rejects):
                first = window.rejects.iloc[0]
                context.log.warning(
                    f"{partition}: {len(window.rejects)} of {window.lines_read} lines quarantined: "
                    f"{window.reasons}; first: {first['source']} line {first['line_number']} "
                    f"({first['reason']})"
                )
            for evaluation in _check_evaluations(key("raw_events"), partition, window, settings):
                if _blocks(evaluation):
                    blocking_failures.append(f"{partition} {evaluation.check_name}")
                yield evaluation
        for output, windows in written.items():
            yield Output(windows, output_name=output)
        for output_name, spec in context.assets_def.check_specs_by_output_name.items():
            if spec.key in context.selected_asset_check_keys:
                yield Output(None, output_name=output_name)
        if blocking_failures:
            context.log.error(f"blocking checks failed: {', '.join(blocking_failures)}")

    return ingest_window


def _blocks(evaluation: AssetCheckEvaluation) -> bool:
    """A failed blocking check of ERROR severity: Dagster fails the step after its last event, so
    nothing downstream of the run's windows runs."""
    return not evaluation.passed and evaluation.blocking and evaluation.severity == AssetCheckSeverity.ERROR


def _by_start(windows: LazyWindows):
    """Stored windows by start: a window read from storage when asked for, None if absent."""
    keys = {window_start(key): key for key in windows}

    def stored(start: datetime) -> pd.DataFrame | None:
        return windows[keys[start]] if start in keys else None

    return stored


def _checked(
    context: AssetExecutionContext,
    store: WindowStore,
    windows: LazyWindows,
    asset_key: AssetKey,
    columns: tuple[str, ...],
    from_bucket: bool,
):
    """`_by_start`, each window's table compared with what its newest materialization recorded
    (`ingestion.carried`): a table that fails is handed on as absent (`from_bucket`: its hour
    folders are read again), or stops the run with a message naming its file."""
    by_start = _by_start(windows)
    newest = _NewestMetadata(context.instance, asset_key, (window_start(k) for k in windows))

    def stored(start: datetime) -> pd.DataFrame | None:
        try:
            frame = by_start(start)
            problem = stored_problem(frame, _recorded(newest, start), columns)
        except UnreadableWindow as exc:
            frame, problem = None, f"is not a readable Parquet file ({exc.__cause__})"
        if problem is None:
            return frame
        path = store.window_path(asset_key, window_key(start))  # type: ignore[attr-defined]
        where = f"{asset_key.to_user_string()} of window {window_key(start)} ({path})"
        if from_bucket:
            context.log.warning(f"{where} {problem}: not used; that window's hour folders are read again")
            return None
        raise Failure(
            description=f"{where} {problem}. The windows after it cannot be ingested exactly without "
            f"it: materialize window {window_key(start)} again (its ingest_window), then this one.",
            allow_retries=False,
        )

    return stored


class _NewestMetadata:
    """The metadata of the newest materialization of each window of one asset (Dagster's event
    log: no value is loaded; None where a window was never materialized). The windows a step is
    expected to ask for are fetched together in one query when the first is asked for: a small
    window's step otherwise spends more on one query per earlier window than on its events."""

    def __init__(self, instance: DagsterInstance, asset_key: AssetKey, expected: Iterable[datetime]) -> None:
        self._instance, self._asset_key = instance, asset_key
        self._expected = set(expected)
        self._known: dict[datetime, dict | None] = {}

    def __call__(self, start: datetime) -> dict | None:
        if start not in self._known:
            wanted = sorted(self._expected - set(self._known) | {start})
            self._expected.clear()
            self._known.update(self._fetch(wanted))
        return self._known[start]

    def _fetch(self, starts: list[datetime]) -> dict[datetime, dict | None]:
        by_key = {window_key(start): start for start in starts}
        # Newest first; a window materialized many times can crowd others out of the limit, and
        # those are asked for one by one below.
        limit = 4 * len(by_key)
        records = self._instance.fetch_materializations(
            AssetRecordsFilter(asset_key=self._asset_key, asset_partitions=list(by_key)), limit=limit
        ).records
        found: dict[datetime, dict | None] = {}
        for record in records:
            start = by_key.get(record.partition_key or "")
            if start is not None and start not in found and record.asset_materialization is not None:
                found[start] = record.asset_materialization.metadata
        for start in starts:
            if start not in found:
                found[start] = self._one(start) if len(records) == limit else None
        return found

    def _one(self, start: datetime) -> dict | None:
        records = self._instance.fetch_materializations(
            AssetRecordsFilter(asset_key=self._asset_key, asset_partitions=[window_key(start)]), limit=1
        ).records
        if not records or records[0].asset_materialization is None:
            return None
        return records[0].asset_materialization.metadata


def _recorded(newest: _NewestMetadata, start: datetime) -> Recorded | None:
    """What the newest materialization of a window of a carried table recorded (None: none)."""
    metadata = newest(start)
    if metadata is None:
        return None
    rows, digest = metadata.get("dagster/row_count"), metadata.get(CONTENT_DIGEST)
    return Recorded(
        rows=int(rows.value) if rows is not None else None,
        digest=str(digest.value) if digest is not None else None,
    )


def _stored_figures(newest: _NewestMetadata, start: datetime) -> WindowFigures | None:
    """What the newest materialization of an earlier window of `raw_events` recorded."""
    metadata = newest(start)
    if metadata is None or "dagster/row_count" not in metadata:
        return None
    source = metadata.get("source")
    newest_event = metadata.get("newest_event_at")
    return WindowFigures(
        events=int(metadata["dagster/row_count"].value),
        # Windows stored before GA4 came were Snowplow's.
        source=SNOWPLOW if source is None else str(source.value),
        newest_event_at=pd.Timestamp(newest_event.value) if newest_event is not None else None,
    )


def _events_metadata(window: IngestedWindow) -> dict:
    events = window.events
    figures = {
        name: MetadataValue.json(value) if isinstance(value, dict | list) else value
        for name, value in window.source_figures.items()
    }
    return {
        "dagster/row_count": len(events),
        "source": window.source,
        "objects_read": window.objects_read,
        "lines_read": window.lines_read,
        **figures,
        "state_windows_read": window.state_windows_read,
        "quarantined_lines": len(window.rejects),
        "quarantined_by_reason": MetadataValue.json(window.reasons),
        "duplicates_dropped": MetadataValue.json(window.duplicates),
        "events_by_name": MetadataValue.json(
            {str(k): int(v) for k, v in events["event_name"].value_counts().sort_index().items()}
        ),
        # Only where there are events: the freshness check of later windows reads it.
        **({"newest_event_at": str(events["collector_tstamp"].max())} if len(events) else {}),
        "seconds": round(window.seconds, 3),
        "preview": preview(events),
    }


def _deliveries_metadata(window: IngestedWindow) -> dict:
    return {"dagster/row_count": len(window.deliveries), "preview": preview(window.deliveries)}


def _state_metadata(window: IngestedWindow) -> dict:
    state = window.state
    return {
        "dagster/row_count": len(state),
        # Later windows check the stored table against it before they credit from it.
        CONTENT_DIGEST: content_digest(state),
        "sessions": int((state["kind"] == "session").sum()),
        "page_views": int((state["kind"] == "page_view").sum()),
    }


def _rejects_metadata(window: IngestedWindow) -> dict:
    return {
        "dagster/row_count": len(window.rejects),
        "by_reason": MetadataValue.json(window.reasons),
        "preview": preview(window.rejects),
    }


def _check_evaluations(
    raw_events: AssetKey, partition: str, window: IngestedWindow, settings
) -> list[AssetCheckEvaluation]:
    """The window's four check results, recorded for its own partition."""
    malformed = {
        "malformed_share": round(window.malformed_share, 6),
        "quarantined_lines": len(window.rejects),
        "lines_read": window.lines_read,
        # The site's settings, as text: Dagster plots every number over the windows.
        "min_lines_judged": MetadataValue.text(f"{settings.malformed_min_lines:,}"),
        "warn_threshold": MetadataValue.text(f"{settings.malformed_warn_share:.1%}"),
        "block_threshold": MetadataValue.text(f"{settings.malformed_block_share:.1%}"),
    }
    volume = {
        "events": len(window.events),
        "same_window_earlier_days": MetadataValue.json(window.same_window_earlier_days),
    }
    return [
        _evaluation(raw_events, MALFORMED_WARN, partition, window.malformed_warn, malformed, blocking=False),
        _evaluation(raw_events, MALFORMED_BLOCK, partition, window.malformed_block, malformed, blocking=True),
        _evaluation(raw_events, VOLUME, partition, window.volume, volume, blocking=True),
        _evaluation(
            raw_events,
            FRESHNESS,
            partition,
            window.freshness,
            {"freshness_hours": MetadataValue.text(f"{settings.freshness_hours:g}")},
            blocking=False,
        ),
    ]


def _evaluation(
    asset_key: AssetKey,
    check: str,
    partition: str,
    verdict: Verdict,
    metadata: dict,
    blocking: bool,
    severity: AssetCheckSeverity | None = None,
) -> AssetCheckEvaluation:
    if severity is None:
        severity = AssetCheckSeverity.ERROR if verdict.blocking else AssetCheckSeverity.WARN
    return AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=check,
        passed=verdict.passed,
        metadata=metadata,
        severity=severity,
        description=verdict.description,
        blocking=blocking,
        partition=partition,
    )


def _sessionized_interactions(name: str) -> AssetsDefinition:
    key = partial(site_key, name)

    @asset(
        key=key("sessionized_interactions"),
        ins={"raw_events": AssetIn(key("raw_events"), metadata={"by_window": True})},
        partitions_def=window_partitions(name),
        group_name=site_prefix(name),
        io_manager_key="table_io_manager",
        dagster_type=SessionizedInteractionsType,
        code_version="3",
        kinds={"pandas"},
        backfill_policy=WINDOW_BACKFILL_POLICY,
        pool=site_pool(name),
    )
    def sessionized_interactions(
        context: AssetExecutionContext, table_io_manager: WindowStore, raw_events: LazyWindows
    ) -> Output[WrittenWindows]:
        """Reading time per (reader, session, article, day) from the window's page views and pings,
        after dropping bots, staging hosts, non-article pages and events read too late."""
        site = SITES[name]
        written = WrittenWindows()
        for partition, _, _ in windows_of_run(context):
            result = sessionize(raw_events[partition], site)
            interactions = result.interactions
            validate_window(SESSIONIZED_INTERACTIONS, f"{name} {partition}", interactions)
            table_io_manager.write_window(key("sessionized_interactions"), partition, interactions)  # type: ignore[attr-defined]
            written[partition] = len(interactions)
            context.add_asset_metadata(
                {
                    "dagster/row_count": len(interactions),
                    "readers": int(interactions["reader_id"].nunique()),
                    "articles": int(interactions["external_id"].nunique()),
                    "engaged_seconds": float(interactions["engaged_seconds"].sum()),
                    "ping_dwell_seconds": float(interactions["ping_dwell_seconds"].sum()),
                    "events_filtered": MetadataValue.json(result.filtered),
                    "preview": preview(interactions),
                },
                partition_key=partition,
            )
        return Output(written)

    return sessionized_interactions

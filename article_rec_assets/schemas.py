"""pandera schemas of the table assets; Dagster validates every output against them and shows
their columns in the UI. A window asset's step over a range writes its windows itself, each
validated before it is written (`validate_window`), and hands Dagster the `WrittenWindows`."""

from __future__ import annotations

import warnings

import pandas as pd
import pandera.pandas as pa
from dagster import BetaWarning, DagsterType, TypeCheck
from dagster_pandera import pandera_schema_to_dagster_type

from article_rec_assets.io_managers import WrittenWindows

UTC_TIME = "datetime64[ns, UTC]"


def _text(nullable: bool = False, **kwargs) -> pa.Column:
    return pa.Column("string", nullable=nullable, **kwargs)


RAW_EVENTS = pa.DataFrameSchema(
    {
        "event_id": _text(unique=True, checks=pa.Check.str_matches(r"^[0-9a-fA-F-]{36}$")),
        "event_name": _text(),
        "app_id": _text(nullable=True),
        "platform": _text(nullable=True),
        "reader_id": _text(nullable=True),
        "session_id": _text(nullable=True),
        "page_view_id": _text(nullable=True),
        "page_host": _text(nullable=True),
        "page_path": _text(nullable=True),
        "useragent": _text(nullable=True),
        "iab_spider": pa.Column("boolean", nullable=True),
        "collector_tstamp": pa.Column(UTC_TIME),
        "dvce_created_tstamp": pa.Column(UTC_TIME),
        "session_start_tstamp": pa.Column(UTC_TIME, nullable=True),
        "engaged_increment_seconds": pa.Column("float64", pa.Check.ge(0)),
    },
    name="RawEvents",
    description="The Snowplow events of the window's own hour folders, once each (duplicates delivered "
    "earlier dropped), with reader, session, publisher page and the reading seconds each ping adds.",
    strict=True,
)

QUARANTINED_EVENT_LINES = pa.DataFrameSchema(
    {
        "source": _text(),
        "line_number": pa.Column("int64", pa.Check.ge(1)),
        "reason": _text(),
        "excerpt": _text(),
    },
    name="QuarantinedEventLines",
    description="Lines of the window's objects that are not usable events: where, why, and their "
    "first 500 characters.",
    strict=True,
)

DELIVERED_EVENTS = pa.DataFrameSchema(
    {
        "event_id": pa.Column(object, unique=True),
        "event_name": pa.Column(object),
        "domain_userid": pa.Column(object, nullable=True),
        "domain_sessionid": pa.Column(object, nullable=True),
        "amp_client_id": pa.Column(object, nullable=True),
        "page_view_id": pa.Column(object, nullable=True),
        "page_urlhost": pa.Column(object, nullable=True),
        "page_urlpath": pa.Column(object, nullable=True),
        "amp_engaged_seconds": pa.Column("float64", nullable=True),
        "collector_tstamp": pa.Column(UTC_TIME),
        "dvce_created_tstamp": pa.Column(UTC_TIME, nullable=True),
    },
    name="DeliveredEvents",
    description="Every event the window's hour folders delivered, once each, as parsed (before "
    "filters): the later windows' context for duplicates, readers, sessions and heartbeats, so "
    "their objects are not parsed again.",
    strict=True,
)

READING_STATE = pa.DataFrameSchema(
    {
        "kind": _text(checks=pa.Check.isin(["session", "page_view"])),
        "key": pa.Column("int64"),
        "session_start_tstamp": pa.Column(UTC_TIME, nullable=True),
        "amp_engaged_seconds": pa.Column("float64", nullable=True),
    },
    name="ReadingState",
    description="What the window hands on beyond the lookback: each session's start and each page "
    "view already credited with reading time (by 64-bit key), so credit and max_session_days stay "
    "exact across days.",
    unique=["kind", "key"],
    strict=True,
)

SESSIONIZED_INTERACTIONS = pa.DataFrameSchema(
    {
        "reader_id": _text(),
        "session_id": _text(),
        "external_id": _text(),
        "article_path": _text(),
        "day": pa.Column(UTC_TIME),
        "page_views": pa.Column("int64", pa.Check.ge(0)),
        "pings": pa.Column("int64", pa.Check.ge(0)),
        "engaged_seconds": pa.Column("float64", pa.Check.ge(0)),
        "ping_dwell_seconds": pa.Column("float64", pa.Check.ge(0)),
        "first_seen": pa.Column(UTC_TIME),
        "last_seen": pa.Column(UTC_TIME),
    },
    name="SessionizedInteractions",
    description="Reading time per (reader, session, article, day) from one window's events.",
    unique=["reader_id", "session_id", "external_id", "day"],
    strict=True,
)

ARTICLE_CATALOGUE = pa.DataFrameSchema(
    {
        "external_id": _text(unique=True),
        "path": _text(),
        "title": _text(),
        "published_at": pa.Column(UTC_TIME, nullable=True),
        "exclude_reason": _text(nullable=True),
    },
    name="ArticleCatalogue",
    description="The site's articles published before the window's end; NA exclude_reason = recommendable.",
    strict=True,
)

ARTICLE_POPULARITY = pa.DataFrameSchema(
    {
        "external_id": _text(unique=True),
        "engaged_seconds": pa.Column("float64", pa.Check.ge(0)),
        "readers": pa.Column("int64", pa.Check.ge(1)),
    },
    name="ArticlePopularity",
    description="Reading seconds and readers per article over the site's popularity window.",
    strict=True,
)

ARTICLE_RECOMMENDATIONS = pa.DataFrameSchema(
    {
        "model_type": _text(checks=pa.Check.isin(["article", "popularity"])),
        "source_entity_id": _text(),
        "recommended_external_id": _text(),
        "score": pa.Column("float64", pa.Check.in_range(0, 1)),
        "rank": pa.Column("int64", pa.Check.ge(1)),
    },
    name="ArticleRecommendations",
    description="Top-k similar articles per article, and the popularity fallback (source 'default').",
    unique=["model_type", "source_entity_id", "recommended_external_id"],
    strict=True,
)


class WindowTableInvalid(ValueError):
    """A window's table does not hold to its schema: nothing of it is written."""


def validate_window(schema: pa.DataFrameSchema, window: str, frame: pd.DataFrame) -> None:
    """`frame` checked against `schema` (every failure found, not only the first)."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        raise WindowTableInvalid(
            f"{schema.name} of window {window}: {len(cases)} schema failures, first: "
            f"{cases.head(5).to_dict('records')}"
        ) from exc


def _window_table_type(schema: pa.DataFrameSchema) -> DagsterType:
    """The schema's Dagster type (its columns shown in the UI), which also takes the windows a
    step wrote itself: each was validated (`validate_window`) before it was written."""
    with warnings.catch_warnings():  # dagster-pandera's converter is marked beta; it is the documented way
        warnings.simplefilter("ignore", BetaWarning)
        table_type = pandera_schema_to_dagster_type(schema)

    def check(context, value) -> TypeCheck | bool:
        if isinstance(value, WrittenWindows):
            return TypeCheck(success=True, description=f"{len(value)} windows validated as written")
        return table_type.type_check(context, value)

    return DagsterType(
        type_check_fn=check,
        name=table_type.unique_name,
        description=table_type.description,
        metadata=table_type.metadata,
        typing_type=pd.DataFrame,
    )


RawEventsType = _window_table_type(RAW_EVENTS)
QuarantinedEventLinesType = _window_table_type(QUARANTINED_EVENT_LINES)
DeliveredEventsType = _window_table_type(DELIVERED_EVENTS)
ReadingStateType = _window_table_type(READING_STATE)
SessionizedInteractionsType = _window_table_type(SESSIONIZED_INTERACTIONS)
ArticleCatalogueType = _window_table_type(ARTICLE_CATALOGUE)
# dagster-pandera's converter is marked beta; it is the documented way, so its notice is muted.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    ArticlePopularityType = pandera_schema_to_dagster_type(ARTICLE_POPULARITY)
    ArticleRecommendationsType = pandera_schema_to_dagster_type(ARTICLE_RECOMMENDATIONS)

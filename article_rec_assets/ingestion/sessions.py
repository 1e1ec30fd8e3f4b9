"""Sessionized interactions: a window's events turned into reading time per
(reader, session, article, day), after the filters a newsroom expects (bots, staging hosts, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from article_rec_assets.ingestion.cleaning import map_unique
from article_rec_assets.ingestion.formats import PAGE_EVENTS, PAGE_VIEW_EVENTS, PING_EVENTS
from article_rec_assets.settings.sites import SiteConfig

# User agents of crawlers, previewers, monitors and scripts (the families Snowplow's UA and IAB
# enrichments flag), matched case-insensitively anywhere in the string.
BOT_USERAGENT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|archiver|headless|phantomjs|selenium|puppeteer|playwright|"
    r"python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|axios|"
    r"node-fetch|scrapy|libwww|httpclient|facebookexternalhit|embedly|lighthouse|pingdom|"
    r"uptimerobot|monitor|preview|feedfetcher|mediapartners",
    re.IGNORECASE,
)
# Filter reasons, in the order they are applied; each event is counted under the first that holds.
FILTER_REASONS = (
    "other_event_type",
    "no_reader_id",
    "bot_useragent",
    "iab_spider",
    "empty_useragent",
    "host_not_allowed",
    "too_late",
    "session_too_long",
    "not_an_article",
)
INTERACTION_DTYPES = {
    "reader_id": "string",
    "session_id": "string",
    "external_id": "string",
    "article_path": "string",
    "day": "datetime64[ns, UTC]",
    "page_views": "int64",
    "pings": "int64",
    "engaged_seconds": "float64",
    "ping_dwell_seconds": "float64",
    "first_seen": "datetime64[ns, UTC]",
    "last_seen": "datetime64[ns, UTC]",
}


@dataclass
class Sessionized:
    interactions: pd.DataFrame
    filtered: dict[str, int] = field(default_factory=dict)


def article_ids_for_paths(paths: pd.Series, site: SiteConfig) -> pd.Series:
    """The site's external id for each (normalized) path; NA where the path is not an article."""

    def ids_of(unique_paths: pd.Series) -> pd.Series:
        clean = unique_paths.astype("string").str.split("?", n=1).str[0].str.split("#", n=1).str[0]
        ids = clean.str.extract(site.path_regex)["external_id"]
        for prefix in site.articles.excluded_path_prefixes:
            ids = ids.mask(clean.str.startswith(prefix).fillna(False))
        return ids.astype("string")

    return map_unique(paths.astype(object), ids_of).astype("string")


def _is_bot(useragents: pd.Series, extra_pattern: str | None) -> pd.Series:
    bot = useragents.str.contains(BOT_USERAGENT)
    if extra_pattern:
        bot |= useragents.str.contains(extra_pattern, regex=True)
    return bot


def filter_reasons(events: pd.DataFrame, site: SiteConfig) -> tuple[pd.Series, pd.Series]:
    """Why each event does not count (NA: it counts), and each event's article id."""
    settings = site.events
    reason = pd.Series(pd.NA, index=events.index, dtype="string")
    useragent = events["useragent"].fillna("")
    late = events["collector_tstamp"] - events["dvce_created_tstamp"]
    external_ids = article_ids_for_paths(events["page_path"], site)
    checks = {
        "other_event_type": ~events["event_name"].isin(PAGE_EVENTS),
        "no_reader_id": events["reader_id"].isna(),
        "bot_useragent": map_unique(
            useragent.astype(object), lambda u: _is_bot(u, settings.extra_bot_pattern)
        ),
        "iab_spider": events["iab_spider"].fillna(False).astype(bool),
        "empty_useragent": map_unique(useragent.astype(object), lambda u: u.str.strip() == "")
        & settings.drop_empty_useragent,
        "host_not_allowed": ~events["page_host"].isin(settings.allowed_hosts)
        if settings.allowed_hosts
        else pd.Series(False, index=events.index),
        "too_late": late > pd.Timedelta(hours=settings.max_lateness_hours),
        # Snowplow's `max_session_days`: a session kept alive for days is a bot or a kiosk. Raw
        # events stored before the column existed have no session start: nothing is filtered.
        "session_too_long": events["collector_tstamp"] - events.get("session_start_tstamp", pd.NaT)
        > pd.Timedelta(days=settings.max_session_days),
        "not_an_article": external_ids.isna(),
    }
    # Apply in reverse so that the first reason in FILTER_REASONS is the one that sticks.
    for name in reversed(FILTER_REASONS):
        reason = reason.mask(pd.Series(checks[name], index=events.index).fillna(False).astype(bool), name)
    return reason, external_ids


def sessionize(events: pd.DataFrame, site: SiteConfig) -> Sessionized:
    """Reading time per (reader, session, article, day) from a window's cleaned events.

    `engaged_seconds` sums what each ping adds under Snowplow's web model (or AMP's cumulative
    engaged time), so windows add up without double counting; `ping_dwell_seconds` is the old
    job's pings x interval, kept so the two can be compared.
    """
    reason, external_ids = filter_reasons(events, site)
    counts = reason.value_counts()
    filtered = {name: int(counts.get(name, 0)) for name in FILTER_REASONS if counts.get(name, 0)}
    kept = events[reason.isna()]
    created = kept["dvce_created_tstamp"]
    # Paths as codes of their sorted distinct values: the group's smallest path is a numeric min.
    path_codes, paths = pd.factorize(kept["page_path"].astype(object), sort=True)
    frame = pd.DataFrame(
        {
            "reader_id": kept["reader_id"],
            "session_id": kept["session_id"].fillna(""),
            "external_id": external_ids[reason.isna()],
            "path_code": path_codes,
            "day": created.dt.floor("D"),
            "is_view": kept["event_name"].isin(PAGE_VIEW_EVENTS),
            "is_ping": kept["event_name"].isin(PING_EVENTS),
            "engaged": kept["engaged_increment_seconds"],
            "created": created,
        }
    )
    out = (
        frame.groupby(["reader_id", "session_id", "external_id", "day"], sort=True, observed=True)
        .agg(
            path_code=("path_code", "min"),
            page_views=("is_view", "sum"),
            pings=("is_ping", "sum"),
            engaged_seconds=("engaged", "sum"),
            first_seen=("created", "min"),
            last_seen=("created", "max"),
        )
        .reset_index()
    )
    out["article_path"] = paths.take(out["path_code"].to_numpy()) if len(out) else []
    out["ping_dwell_seconds"] = out["pings"] * float(site.events.ping_interval_seconds)
    out = out[list(INTERACTION_DTYPES)].astype(INTERACTION_DTYPES)
    return Sessionized(out, filtered)


def empty_interactions() -> pd.DataFrame:
    """An interactions table with no rows and the right column types."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in INTERACTION_DTYPES.items()})

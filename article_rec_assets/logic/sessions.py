"""Sessionized interactions: page views and pings turned into reading time per
(reader, session, article, day)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from article_rec_assets.sites import SiteConfig

PAGE_EVENTS = ("page_view", "page_ping")
# Snowplow's web model: a first ping after a 5 s minimum visit, then one per heartbeat.
MIN_VISIT_SECONDS = 5


@dataclass
class Sessionized:
    interactions: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


def article_ids_for_paths(paths: pd.Series, site: SiteConfig) -> pd.Series:
    """The site's external id for each path (NA where the path is not an article)."""
    clean = paths.str.split("?", n=1).str[0].str.split("#", n=1).str[0]
    ids = clean.str.extract(site.path_regex)["external_id"]
    for prefix in site.articles.excluded_path_prefixes:
        ids = ids.mask(clean.str.startswith(prefix))
    return ids.astype("string")


def sessionize(events: pd.DataFrame, site: SiteConfig) -> Sessionized:
    """Reading time per (reader, session, article, day) from a window's raw events.

    `engaged_seconds` follows Snowplow's web model (heartbeat x (distinct heartbeat windows - 1)
    + minimum visit, 0 without pings); `ping_dwell_seconds` is the old job's pings x interval,
    kept so the two can be compared.
    """
    dropped: Counter[str] = Counter()
    heartbeat = site.events.ping_interval_seconds

    page = events[events["event_name"].isin(PAGE_EVENTS)]
    dropped["other_event_type"] = len(events) - len(page)
    no_reader = page["domain_userid"].isna()
    dropped["no_reader_id"] = int(no_reader.sum())
    page = page[~no_reader]
    if site.events.allowed_hosts:
        foreign = ~page["page_urlhost"].isin(site.events.allowed_hosts)
        dropped["host_not_allowed"] = int(foreign.sum())
        page = page[~foreign]
    external_ids = article_ids_for_paths(page["page_urlpath"].fillna(""), site)
    not_article = external_ids.isna()
    dropped["not_an_article"] = int(not_article.sum())
    page = page[~not_article].assign(external_id=external_ids[~not_article])

    created = page["dvce_created_tstamp"]
    frame = pd.DataFrame(
        {
            "reader_id": page["domain_userid"],
            "session_id": page["domain_sessionid"].fillna(""),
            "external_id": page["external_id"],
            "article_path": page["page_urlpath"],
            "day": created.dt.floor("D"),
            "is_view": page["event_name"] == "page_view",
            "is_ping": page["event_name"] == "page_ping",
            "created": created,
            "heartbeat_window": (created.astype("int64") // 1_000_000_000) // heartbeat,
        }
    )
    keys = ["reader_id", "session_id", "external_id", "day"]
    grouped = frame.groupby(keys, sort=True, observed=True)
    out = grouped.agg(
        article_path=("article_path", "min"),
        page_views=("is_view", "sum"),
        pings=("is_ping", "sum"),
        first_seen=("created", "min"),
        last_seen=("created", "max"),
    )
    windows = (
        frame[frame["is_ping"]]
        .groupby(keys, sort=True, observed=True)["heartbeat_window"]
        .nunique()
        .rename("windows")
    )
    out = out.join(windows).fillna({"windows": 0})
    out["engaged_seconds"] = (
        (heartbeat * (out["windows"] - 1) + MIN_VISIT_SECONDS).where(out["windows"] > 0, 0)
    ).astype("float64")
    out["ping_dwell_seconds"] = (out["pings"] * heartbeat).astype("float64")
    out = out.reset_index()[list(INTERACTION_DTYPES)].astype(INTERACTION_DTYPES)
    return Sessionized(out, {k: v for k, v in dropped.items() if v})


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


def empty_interactions() -> pd.DataFrame:
    """An interactions table with no rows and the right column types."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in INTERACTION_DTYPES.items()})

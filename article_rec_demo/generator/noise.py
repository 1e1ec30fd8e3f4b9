"""The dirt of a real Snowplow bucket, as settings and as line builders.

`NoiseSettings` says how often each case happens; `generate_site` draws every case from random
streams of its own, so the human web traffic keeps the clean generator's draws and `noise=None`
writes exactly the clean bytes.
"""

from __future__ import annotations

import random

import orjson
from pydantic import BaseModel, ConfigDict, Field

from article_rec_demo.generator.tsv import to_tsv_fields


class NoiseSettings(BaseModel):
    """How much of each dirty case to write. Shares of sessions are relative to the site's human
    sessions (`demo.sessions_per_day`); shares of lines to the lines written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Event lines written as enriched TSV instead of JSON (web and AMP events respectively).
    tsv_share: float = Field(0.02, ge=0.0, le=1.0)
    amp_tsv_share: float = Field(0.02, ge=0.0, le=1.0)
    # AMP: chains of AMP page views, per human session; the AMP readers' pool, per demo reader
    # (at least 20 readers); the page views served from the AMP cache, and among those the
    # ones under the viewer's `/v/s/` prefix rather than `/c/s/`.
    amp_session_share: float = Field(0.03, ge=0.0, le=1.0)
    amp_reader_share: float = Field(0.03, ge=0.0, le=1.0)
    amp_cache_share: float = Field(0.5, ge=0.0, le=1.0)
    amp_viewer_share: float = Field(0.25, ge=0.0, le=1.0)
    # Exact copies of event lines (at-least-once delivery); some land 1-6 hour folders later.
    duplicate_share: float = Field(0.002, ge=0.0, le=1.0)
    duplicate_later_folder_share: float = Field(0.4, ge=0.0, le=1.0)
    # Bot sessions: a bot user agent; a human user agent flagged by the IAB enrichment; no user
    # agent at all. And human sessions carrying the IAB context with spiderOrRobot false.
    bot_ua_session_share: float = Field(0.01, ge=0.0, le=1.0)
    bot_iab_session_share: float = Field(0.005, ge=0.0, le=1.0)
    empty_ua_session_share: float = Field(0.004, ge=0.0, le=1.0)
    iab_human_session_share: float = Field(0.03, ge=0.0, le=1.0)
    # Sessions on internal hosts: `staging.<site host>` and `localhost`.
    staging_session_share: float = Field(0.004, ge=0.0, le=1.0)
    localhost_session_share: float = Field(0.002, ge=0.0, le=1.0)
    # Human sessions whose device was offline: collected 2-5 h late; and more than 72 h late
    # (only for sessions that start early enough for their events to land before `end`).
    late_session_share: float = Field(0.005, ge=0.0, le=1.0)
    too_late_session_share: float = Field(0.003, ge=0.0, le=1.0)
    # Malformed lines of each reason, per line written (11 reasons).
    malformed_share_per_reason: float = Field(5e-5, ge=0.0, le=1.0)
    # Objects whose gzip bytes are cut, per generated day (of 24 hours from `start`), and where.
    truncated_objects_per_day: int = Field(1, ge=0, le=24)
    truncate_at: float = Field(0.6, gt=0.0, lt=1.0)
    # Empty (0-byte) objects, each in some hour folder.
    empty_objects: int = Field(1, ge=0)


DEFAULT_NOISE = NoiseSettings()

MALFORMED_REASONS = (
    "invalid_json",
    "not_a_json_object",
    "wrong_field_count",
    "undecodable_bytes",
    "missing_event_id",
    "malformed_event_id",
    "missing_timestamp",
    "unparseable_timestamp",
    "timestamp_in_future",
    "missing_event_name",
    "page_event_without_path",
)
BOT_USER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
)
IAB_KEY = "contexts_com_iab_snowplow_spiders_and_robots_1"
IAB_ROBOT = [
    {
        "spiderOrRobot": True,
        "category": "SPIDER_OR_ROBOT",
        "reason": "FAILED_UA_INCLUDE",
        "primaryImpact": "UNKNOWN",
    }
]
IAB_HUMAN = [{"spiderOrRobot": False, "category": "BROWSER", "reason": "PASSED_ALL", "primaryImpact": "NONE"}]
WEB_PAGE_KEY = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID_KEY = "contexts_dev_amp_snowplow_amp_id_1"
AMP_PAGE_KEY = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PING_KEY = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
# JSON that is not an object; each starts with `[` or `"`, so it reads as JSON rather than as TSV.
_NOT_OBJECTS = (b"[1, 2]", b'"text"', b"[]", b'["page_view"]')
_BAD_EVENT_IDS = ("not-a-uuid", "12345", "e3b0c442-98fc-1c14", "ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ")


def amp_cache_host(host: str) -> str:
    """The AMP cache's host for a site: `-` doubled, `.` made `-`, under cdn.ampproject.org."""
    return host.replace("-", "--").replace(".", "-") + ".cdn.ampproject.org"


def malformed_line(reason: str, event: dict, rnd: random.Random) -> bytes:
    """A line of the given defect, made from a valid page event (a dict it may change)."""
    if reason == "invalid_json":
        line = orjson.dumps(event)
        return line[: len(line) // 2]
    if reason == "not_a_json_object":
        return _NOT_OBJECTS[rnd.randrange(len(_NOT_OBJECTS))]
    if reason == "wrong_field_count":
        fields = to_tsv_fields(event)
        del fields[rnd.randrange(len(fields))]
        return "\t".join(fields).encode()
    if reason == "undecodable_bytes":
        # A lone continuation byte pair that is not UTF-8, inside the user agent.
        return orjson.dumps(event).replace(b'"useragent":"', b'"useragent":"\xc3\x28\xff', 1)
    if reason == "missing_event_id":
        del event["event_id"]
    elif reason == "malformed_event_id":
        event["event_id"] = _BAD_EVENT_IDS[rnd.randrange(len(_BAD_EVENT_IDS))]
    elif reason == "missing_timestamp":
        del event["collector_tstamp"]
    elif reason == "unparseable_timestamp":
        event["collector_tstamp"] = "yesterday"
    elif reason == "timestamp_in_future":
        # Whole leap cycles later, so that a 29 February stays a valid date.
        collected = event["collector_tstamp"]
        event["collector_tstamp"] = f"{int(collected[:4]) + 4 * rnd.randint(1, 2)}{collected[4:]}"
    elif reason == "missing_event_name":
        del event["event"], event["event_name"]
    elif reason == "page_event_without_path":
        del event["page_url"], event["page_urlpath"]
    else:
        raise ValueError(f"unknown malformed reason {reason!r}")
    return orjson.dumps(event)

"""Write an event as a line of Snowplow's enriched TSV (the format its loaders write to S3).

Exactly 131 tab-separated fields, an empty string for null; timestamps `YYYY-MM-DD HH:MM:SS.fff`;
contexts and the unstructured event as self-describing JSON strings. The input is the event as
the generator builds it for a JSON line (the analytics SDK's shape), so both formats carry the
same content.
"""

from __future__ import annotations

import orjson

TSV_FIELD_COUNT = 131
# Positions from 0 (docs/contract.md, section 3), and a few more that Snowplow always fills.
APP_ID = 0
PLATFORM = 1
ETL_TSTAMP = 2
COLLECTOR_TSTAMP = 3
DVCE_CREATED_TSTAMP = 4
EVENT = 5
EVENT_ID = 6
NAME_TRACKER = 8
V_TRACKER = 9
V_COLLECTOR = 10
V_ETL = 11
DOMAIN_USERID = 15
PAGE_URL = 29
PAGE_URLSCHEME = 32
PAGE_URLHOST = 33
PAGE_URLPORT = 34
PAGE_URLPATH = 35
CONTEXTS = 52
UNSTRUCT_EVENT = 58
USERAGENT = 77
DVCE_SENT_TSTAMP = 119
DERIVED_CONTEXTS = 122
DOMAIN_SESSIONID = 123
DERIVED_TSTAMP = 124
EVENT_VENDOR = 125
EVENT_NAME = 126
EVENT_FORMAT = 127
EVENT_VERSION = 128

CONTEXTS_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
# JSON key of a flattened context -> the Iglu schema of one of its entries.
CONTEXT_SCHEMAS = {
    "contexts_com_snowplowanalytics_snowplow_web_page_1": (
        "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
    ),
    "contexts_dev_amp_snowplow_amp_id_1": "iglu:dev.amp.snowplow/amp_id/jsonschema/1-0-0",
    "contexts_dev_amp_snowplow_amp_web_page_1": "iglu:dev.amp.snowplow/amp_web_page/jsonschema/1-0-0",
}
# Contexts that Snowplow's enrichments add go to `derived_contexts`, not `contexts`.
DERIVED_CONTEXT_SCHEMAS = {
    "contexts_com_iab_snowplow_spiders_and_robots_1": (
        "iglu:com.iab.snowplow/spiders_and_robots/jsonschema/1-0-0"
    ),
}
UNSTRUCT_SCHEMAS = {
    "unstruct_event_dev_amp_snowplow_amp_page_ping_1": "iglu:dev.amp.snowplow/amp_page_ping/jsonschema/1-0-0",
}
_TEXT_POSITIONS = {
    "app_id": APP_ID,
    "platform": PLATFORM,
    "event": EVENT,
    "event_id": EVENT_ID,
    "domain_userid": DOMAIN_USERID,
    "page_url": PAGE_URL,
    "page_urlhost": PAGE_URLHOST,
    "page_urlpath": PAGE_URLPATH,
    "useragent": USERAGENT,
    "domain_sessionid": DOMAIN_SESSIONID,
    "event_name": EVENT_NAME,
}
_TIME_POSITIONS = {
    "collector_tstamp": COLLECTOR_TSTAMP,
    "dvce_created_tstamp": DVCE_CREATED_TSTAMP,
    "dvce_sent_tstamp": DVCE_SENT_TSTAMP,
    "derived_tstamp": DERIVED_TSTAMP,
}


def tsv_time(iso: str) -> str:
    """`2026-03-02T10:00:05.123Z` -> `2026-03-02 10:00:05.123`."""
    return iso.removesuffix("Z").replace("T", " ")


def _contexts(event: dict, schemas: dict[str, str]) -> str:
    data = [
        {"schema": schema, "data": entry}
        for key, schema in schemas.items()
        if key in event
        for entry in event[key]
    ]
    if not data:
        return ""
    return orjson.dumps({"schema": CONTEXTS_SCHEMA, "data": data}).decode()


def to_tsv_fields(event: dict) -> list[str]:
    """The 131 enriched-TSV fields of an event given in its JSON-line shape."""
    fields = [""] * TSV_FIELD_COUNT
    for key, position in _TEXT_POSITIONS.items():
        value = event.get(key)
        if value is not None:
            fields[position] = str(value)
    for key, position in _TIME_POSITIONS.items():
        if key in event:
            fields[position] = tsv_time(event[key])
    fields[ETL_TSTAMP] = fields[COLLECTOR_TSTAMP]
    is_amp = "contexts_dev_amp_snowplow_amp_id_1" in event
    fields[NAME_TRACKER] = "amp" if is_amp else "sp"
    fields[V_TRACKER] = "amp-1.1.0" if is_amp else "js-3.24.2"
    fields[V_COLLECTOR] = "ssc-3.2.0-kinesis"
    fields[V_ETL] = "snowplow-enrich-kinesis-4.2.0"
    url = event.get("page_url", "")
    if url:
        scheme = url.split(":", 1)[0]
        fields[PAGE_URLSCHEME] = scheme
        fields[PAGE_URLPORT] = "443" if scheme == "https" else "80"
    fields[CONTEXTS] = _contexts(event, CONTEXT_SCHEMAS)
    fields[DERIVED_CONTEXTS] = _contexts(event, DERIVED_CONTEXT_SCHEMAS)
    for key, schema in UNSTRUCT_SCHEMAS.items():
        if key in event:
            payload = {"schema": UNSTRUCT_SCHEMA, "data": {"schema": schema, "data": event[key]}}
            fields[UNSTRUCT_EVENT] = orjson.dumps(payload).decode()
    fields[EVENT_VENDOR] = "dev.amp.snowplow" if is_amp else "com.snowplowanalytics.snowplow"
    fields[EVENT_FORMAT] = "jsonschema"
    fields[EVENT_VERSION] = "1-0-0"
    return fields


def to_tsv(event: dict) -> bytes:
    """One enriched-TSV line (no newline)."""
    return "\t".join(to_tsv_fields(event)).encode()

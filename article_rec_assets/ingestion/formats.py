"""The two line formats Snowplow writes: analytics-SDK JSON lines (read by pyarrow with an explicit
schema) and enriched TSV (131 tab-separated fields, taken by position; docs/contract.md, section 3).
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.json as pj

JSON_BLOCK_BYTES = 4 << 20

TSV_FIELD_COUNT = 131
# Positions in the enriched TSV (docs/contract.md, section 3).
TSV_POSITIONS = {
    "app_id": 0,
    "platform": 1,
    "collector_tstamp": 3,
    "dvce_created_tstamp": 4,
    "event": 5,
    "event_id": 6,
    "domain_userid": 15,
    "page_url": 29,
    "page_urlhost": 33,
    "page_urlpath": 35,
    "useragent": 77,
    "domain_sessionid": 123,
    "derived_tstamp": 124,
    "event_name": 126,
}
TSV_CONTEXTS, TSV_UNSTRUCT = 52, 58


# Self-describing JSON as the analytics SDKs flatten it: `contexts_<vendor>_<name>_<major>`.
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"
AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"
AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"
IAB_SPIDERS = "contexts_com_iab_snowplow_spiders_and_robots_1"
# The same, as Iglu schema names inside the TSV's contexts and unstruct_event JSON.
IGLU_NAMES = {
    "com.snowplowanalytics.snowplow/web_page/": WEB_PAGE,
    "dev.amp.snowplow/amp_id/": AMP_ID,
    "dev.amp.snowplow/amp_web_page/": AMP_WEB_PAGE,
    "dev.amp.snowplow/amp_page_ping/": AMP_PAGE_PING,
    "com.iab.snowplow/spiders_and_robots/": IAB_SPIDERS,
}

_TEXT_FIELDS = (
    "app_id",
    "platform",
    "collector_tstamp",
    "dvce_created_tstamp",
    "derived_tstamp",
    "event",
    "event_name",
    "event_id",
    "domain_userid",
    "domain_sessionid",
    "page_url",
    "page_urlhost",
    "page_urlpath",
    "useragent",
)
JSON_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _TEXT_FIELDS]
    + [
        (WEB_PAGE, pa.list_(pa.struct([("id", pa.string())]))),
        (AMP_ID, pa.list_(pa.struct([("ampClientId", pa.string())]))),
        (AMP_WEB_PAGE, pa.list_(pa.struct([("ampPageViewId", pa.string())]))),
        (AMP_PAGE_PING, pa.struct([("totalEngagedTime", pa.float64())])),
        (IAB_SPIDERS, pa.list_(pa.struct([("spiderOrRobot", pa.bool_())]))),
    ]
)
_JSON_PARSE = pj.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")

PAGE_VIEW_EVENTS = ("page_view", "amp_page_view")
PING_EVENTS = ("page_ping", "amp_page_ping")
# GA4's reports of engaged time (ingestion/ga4.py): rows of reading time like Snowplow's pings.
GA4_ENGAGEMENT_EVENTS = ("user_engagement", "scroll")
SNOWPLOW_PAGE_EVENTS = PAGE_VIEW_EVENTS + PING_EVENTS
PAGE_EVENTS = SNOWPLOW_PAGE_EVENTS + GA4_ENGAGEMENT_EVENTS
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _text(value) -> str | None:
    """A JSON value as the text column it belongs in (numbers and booleans as text, {} / [] not)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _record_from_json(obj: dict) -> dict:
    """A line pyarrow refused, but orjson read: keep what fits the schema."""
    record = {name: _text(obj.get(name)) for name in _TEXT_FIELDS}
    for column in (WEB_PAGE, AMP_ID, AMP_WEB_PAGE, IAB_SPIDERS):
        items = obj.get(column)
        record[column] = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None
    ping = obj.get(AMP_PAGE_PING)
    record[AMP_PAGE_PING] = ping if isinstance(ping, dict) else None
    return record


def _record_from_tsv(fields: list[str]) -> dict:
    record: dict = {name: (fields[pos] or None) for name, pos in TSV_POSITIONS.items()}
    for name in ("collector_tstamp", "dvce_created_tstamp", "derived_tstamp"):
        if record[name]:  # "2021-10-14 13:54:40.027000001" -> ISO 8601 in UTC
            record[name] = record[name].replace(" ", "T")[:26] + "Z"
    for position in (TSV_CONTEXTS, TSV_UNSTRUCT):
        if not fields[position]:
            continue
        try:
            payload = orjson.loads(fields[position])
        except orjson.JSONDecodeError:
            continue
        data = payload.get("data") if isinstance(payload, dict) else None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict):
                continue
            schema, body = str(item.get("schema", "")), item.get("data")
            for iglu, column in IGLU_NAMES.items():
                if iglu in schema and isinstance(body, dict):
                    if column == AMP_PAGE_PING:
                        record[column] = body
                    else:
                        record.setdefault(column, []).append(body)
    return record


def _table_from_records(records: list[dict]) -> pa.Table:
    columns = {}
    for f in JSON_SCHEMA:
        values = [r.get(f.name) for r in records]
        try:
            columns[f.name] = pa.array(values, type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[f.name] = pa.array([_coerce_nested(v, f.type) for v in values], type=f.type)
    return pa.table(columns, schema=JSON_SCHEMA)


def _coerce_nested(value, arrow_type: pa.DataType):
    """Drop nested values whose shape does not fit (e.g. a context whose fields are numbers)."""
    try:
        pa.array([value], type=arrow_type)
        return value
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _read_json_block(block: bytes) -> pa.Table:
    """pyarrow's reading of JSON lines; raises ArrowInvalid on anything it cannot take whole."""
    try:  # blocks of 4 MiB let pyarrow parse them on several threads
        read = pj.ReadOptions(block_size=min(JSON_BLOCK_BYTES, len(block) + 1))
        table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_JSON_PARSE)
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
        # A line longer than a block (a 10 MB line is legal): one block for the whole object.
        return _read_json_whole(block)
    # pyarrow's reader lets invalid UTF-8 inside strings through; such lines need the slow path.
    table.validate(full=True)
    return table


def _read_json_whole(block: bytes | pa.Buffer) -> pa.Table:
    """pyarrow's reading of JSON lines as one block, so that the row its error names ("in row r")
    counts from the first line of `block` (the threaded reader counts from each 4 MiB piece)."""
    read = pj.ReadOptions(block_size=len(block) + 1, use_threads=False)
    table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_JSON_PARSE)
    table.validate(full=True)  # invalid UTF-8 inside strings; such lines need the slow path
    return table


def _not_tsv_reason(line: str) -> str:
    """Why a line that is not a 131-field TSV line was refused: a JSON value that is not an
    object (an array, a string, a number) gets its own reason."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return "wrong_field_count"
    return "not_a_json_object"


def _invalid_json_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable_bytes"
    return "invalid_json"

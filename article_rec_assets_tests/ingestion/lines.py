import uuid
import zlib

import orjson
import pandas as pd

from article_rec_assets.ingestion.parsing import ParsedEvents, parse_objects
from article_rec_assets.settings.sites import load_sites
from article_rec_assets_tests.support import (
    CONTRACT_TSV_POSITIONS,
    TSV_FIELD_COUNT,
)

HOST = "democitypaper.example"


A1 = "/article/101/first-story/"


# 2024-05-01T10:00:00Z in epoch seconds (2024-05-01T00:00:00Z is 1714521600).
T0_EPOCH = 1714557600


# Positions in the enriched TSV, from the contract (page_urlhost: Snowplow's canonical position).
TSV_POS = CONTRACT_TSV_POSITIONS


WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"


AMP_ID = "contexts_dev_amp_snowplow_amp_id_1"


AMP_WEB_PAGE = "contexts_dev_amp_snowplow_amp_web_page_1"


AMP_PAGE_PING = "unstruct_event_dev_amp_snowplow_amp_page_ping_1"


IAB = "contexts_com_iab_snowplow_spiders_and_robots_1"


UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15"
)


def eid(n: int) -> str:
    """A valid event id (a UUID) numbered n: eid(1) == "00000000-0000-0000-0000-000000000001"."""
    return str(uuid.UUID(int=n))


def json_line(n: int = 1, **fields: object) -> bytes:
    """A JSON line as Snowplow's analytics SDKs write it (a page view unless told); None drops a key."""
    record: dict[str, object] = {
        "event_id": eid(n),
        "event_name": "page_view",
        "collector_tstamp": "2024-05-01T10:00:00Z",
        "domain_userid": "reader-1",
        "domain_sessionid": "session-1",
        "page_urlhost": HOST,
        "page_urlpath": A1,
        "useragent": UA,
    }
    record.update(fields)
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def iglu(vendor_name: str, data: dict) -> dict:
    return {"schema": f"iglu:{vendor_name}/jsonschema/1-0-0", "data": data}


def tsv_contexts(*items: dict) -> str:
    return orjson.dumps(iglu("com.snowplowanalytics.snowplow/contexts", list(items))).decode()


def tsv_unstruct(item: dict) -> str:
    return orjson.dumps(iglu("com.snowplowanalytics.snowplow/unstruct_event", item)).decode()


def tsv_line(**fields: str) -> bytes:
    values = [""] * TSV_FIELD_COUNT
    for name, value in fields.items():
        values[TSV_POS[name]] = value
    return "\t".join(values).encode()


def parse(*lines: bytes, key: str = "k", **kwargs) -> ParsedEvents:
    return parse_objects([(key, b"\n".join(lines))], **kwargs)


def rejected(parsed: ParsedEvents) -> list[list]:
    return parsed.rejects[["line_number", "reason"]].values.tolist()


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def no_events() -> ParsedEvents:
    return parse_objects([])


CITY_EVENTS = load_sites()["demo-city-paper"].events


def gzip_cut_after(payload: bytes) -> bytes:
    """A gzip stream of `payload` that stops (flushed, unfinished) right after it: no final block,
    no CRC trailer, as when an upload is cut off."""
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)


def amp_ping(n: int, at: str, total: float | None, pv: str = "apv-1") -> bytes:
    fields = {AMP_WEB_PAGE: [{"ampPageViewId": pv}]}
    if total is not None:
        fields[AMP_PAGE_PING] = {"totalEngagedTime": total}
    return amp_line(n, at, name="amp_page_ping", **fields)


def web(n: int, at: str, name: str = "page_ping", pv: str | None = "pv-1", **fields) -> bytes:
    """A web event of page view `pv`, created and collected at `at`."""
    context = {WEB_PAGE: [{"id": pv}]} if pv else {}
    return json_line(n, event_name=name, collector_tstamp=at, dvce_created_tstamp=at, **context, **fields)


def amp_line(n: int, at: str, client: str = "amp-1", name: str = "amp_page_view", **fields) -> bytes:
    """An AMP event: no domain_userid nor domain_sessionid; device time = collector time = at."""
    return json_line(
        n,
        event_name=name,
        collector_tstamp=at,
        dvce_created_tstamp=at,
        domain_userid=None,
        domain_sessionid=None,
        **{AMP_ID: [{"ampClientId": client}]},
        **fields,
    )

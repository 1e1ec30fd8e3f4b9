"""Property: whatever bad lines are mixed into a window of good events, wherever they land, the
good readers' interactions come out exactly as they do without them (Hypothesis generates the
lines: random bytes, random text, JSON values and objects made of Snowplow's own field names)."""

from __future__ import annotations

import gzip

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from article_rec_assets.ingestion.cleaning import clean_window
from article_rec_assets.ingestion.parsing import parse_objects
from article_rec_assets.ingestion.sessions import sessionize
from article_rec_assets.settings.sites import load_sites
from article_rec_assets_tests.assets.hostile import UA, good_events

SITE = load_sites()["demo-city-paper"]
GOOD = good_events(readers=60)
RECEIVED_BEFORE = pd.Timestamp("2026-03-03T13:00:00Z")
FIELDS = [
    "event_id", "event_name", "event", "collector_tstamp", "dvce_created_tstamp", "domain_userid",
    "domain_sessionid", "page_urlhost", "page_urlpath", "page_url", "useragent",
    "contexts_com_snowplowanalytics_snowplow_web_page_1", "contexts_dev_amp_snowplow_amp_id_1",
    "unstruct_event_dev_amp_snowplow_amp_page_ping_1",
]  # fmt: skip


def tab_separated(fields: list[str]) -> bytes:
    return "\t".join(fields).encode("utf-8", "surrogatepass")


scalars = st.one_of(
    # orjson writes integers of 64 bits at most (a larger one would fail the test, not the reader).
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=40),
    # Values of real events too, so that some generated lines are events (of their own readers).
    st.sampled_from(["page_view", "page_ping", "2026-03-03T10:30:00Z", "", "\x00", "/article/100/story-0/"]),
    st.sampled_from(["00000000-0000-4000-8000-00000000abcd", "democitypaper.example", UA, UA + "\x00 bot"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
json_objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8).map(
    orjson.dumps
)
bad_lines = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.lists(st.text(max_size=20), min_size=2, max_size=140).map(tab_separated),
    json_objects,
    values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)),
)  # fmt: skip


def good_interactions(lines: list[bytes], gzipped: bool) -> pd.DataFrame:
    half = len(lines) // 2
    objects = [("a", b"\n".join(lines[:half])), ("b", b"\n".join(lines[half:]))]
    if gzipped:
        objects = [(key + ".gz", gzip.compress(data)) for key, data in objects]
    window = parse_objects(objects, RECEIVED_BEFORE)
    cleaned = clean_window(window, parse_objects([]), SITE.events)
    interactions = sessionize(cleaned.events, SITE).interactions
    rows = interactions[interactions["reader_id"].str.startswith("good-", na=False)]
    return rows.sort_values(["reader_id", "session_id", "external_id"]).reset_index(drop=True)


BASELINE = good_interactions(GOOD, gzipped=False)


def is_safe(line: bytes) -> bool:
    # A generated line could, by chance, name a good reader: it would then rightly be that
    # reader's event. Such lines are not "bad" and are left out.
    return b"good-" not in line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD)), bad_lines.filter(is_safe)), min_size=1, max_size=25),
    st.booleans(),
)
def test_bad_lines_anywhere_never_change_the_good_readers_interactions(inserts, gzipped) -> None:
    lines = list(GOOD)
    for position, bad in sorted(inserts, key=lambda item: -item[0]):
        lines[position:position] = bad.split(b"\n")
    pd.testing.assert_frame_equal(good_interactions(lines, gzipped), BASELINE)


def test_the_baseline_has_every_good_reader() -> None:
    assert len(BASELINE) == 60 and BASELINE["engaged_seconds"].gt(0).all()

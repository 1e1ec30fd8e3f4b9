"""Stored tables of earlier windows against what their materializations recorded."""

import pandas as pd

from article_rec_assets.ingestion.carried import Recorded, content_digest, stored_problem

STATE = pd.DataFrame(
    {
        "kind": pd.Series(["session", "page_view"], dtype="string"),
        "key": [11, 12],
        "session_start_tstamp": pd.to_datetime(["2026-03-01T10:00:00Z", None], utc=True),
        "amp_engaged_seconds": [float("nan"), 30.0],
    }
)
COLUMNS = tuple(STATE.columns)


def test_a_table_like_its_materialization_passes() -> None:
    assert stored_problem(STATE, Recorded(rows=2, digest=content_digest(STATE)), COLUMNS) is None
    assert stored_problem(STATE, Recorded(rows=2), COLUMNS) is None  # recorded before digests
    assert stored_problem(STATE, None, COLUMNS) is None  # no materialization recorded: columns only
    assert stored_problem(None, None, COLUMNS) is None  # a window before the site's first
    assert stored_problem(None, Recorded(rows=0), COLUMNS) is None  # an empty table, gone: the same


def test_missing_short_stripped_or_changed_tables_are_told_apart() -> None:
    recorded = Recorded(rows=2, digest=content_digest(STATE))
    assert "missing" in stored_problem(None, recorded, COLUMNS)
    assert "holds 0 rows" in stored_problem(STATE.iloc[:0], recorded, COLUMNS)
    assert "lacks the columns ['key']" in stored_problem(STATE.drop(columns="key"), recorded, COLUMNS)
    changed = STATE.copy()
    changed.loc[1, "amp_engaged_seconds"] = 31.0
    assert "changed after its materialization" in stored_problem(changed, recorded, COLUMNS)
    reordered = STATE.iloc[::-1].reset_index(drop=True)
    assert "changed" in stored_problem(reordered, recorded, COLUMNS)


def test_the_digest_sees_types_and_missing_values() -> None:
    assert content_digest(STATE) == content_digest(STATE.copy())
    assert content_digest(STATE) != content_digest(STATE.astype({"key": "float64"}))
    filled = STATE.copy()
    filled["amp_engaged_seconds"] = filled["amp_engaged_seconds"].fillna(0.0)
    assert content_digest(STATE) != content_digest(filled)
    assert content_digest(STATE.iloc[:0]) != content_digest(STATE)

"""Failed checks grouped into incidents and warnings, without Dagster."""

from article_rec_assets.alerting.incidents import (
    ERROR,
    MAX_REMEMBERED,
    WARN,
    CheckFailure,
    check_messages,
    error_line,
)

UI = "http://ui.example"
PREFIXES = {"tribune": "tribune", "gazette": "gazette"}


def failure(
    window: str, check: str, severity: str, site: str = "tribune", record_id: int = 0
) -> CheckFailure:
    return CheckFailure(
        site=site,
        window=window,
        asset="raw_events",
        check=check,
        severity=severity,
        reason=f"{check} failed",
        run_id=f"run-{window}",
        record_id=record_id,
    )


def test_a_window_with_an_error_is_one_incident_with_its_other_failures_listed() -> None:
    failures = [
        failure("w1", "warn_share", WARN, record_id=1),
        failure("w1", "block_share", ERROR, record_id=2),
        failure("w1", "fresh", WARN, record_id=3),
    ]
    messages, reported = check_messages(failures, {}, UI, PREFIXES)
    assert len(messages) == 1
    incident = messages[0]
    assert (incident["check"], incident["severity"], incident["reason"]) == (
        "block_share",
        ERROR,
        "block_share failed",
    )
    assert [a["check"] for a in incident["also"]] == ["warn_share", "fresh"]
    assert incident["url"] == f"{UI}/runs/run-w1"
    assert reported == {"tribune|w1": ERROR}
    # The same window failing again (a rerun, a retry, a late evaluation): nothing more.
    again, _ = check_messages([failure("w1", "volume", ERROR, record_id=9)], reported, UI, PREFIXES)
    assert again == []


def test_warnings_are_grouped_per_site_and_not_repeated() -> None:
    failures = [
        failure("w1", "fresh", WARN, record_id=1),
        failure("w2", "fresh", WARN, record_id=2),
        failure("w2", "fresh", WARN, site="gazette", record_id=3),
    ]
    messages, reported = check_messages(failures, {}, UI, PREFIXES)
    assert [(m["site"], m["severity"], m["window"], len(m["warnings"])) for m in messages] == [
        ("tribune", WARN, "w1..w2", 2),
        ("gazette", WARN, "w2", 1),
    ]
    assert messages[0]["url"] == f"{UI}/assets/tribune" and messages[0]["run_id"] is None
    assert messages[0]["reason"].startswith("2 warnings: w1 raw_events fresh: fresh failed; w2")
    assert check_messages(failures, reported, UI, PREFIXES)[0] == []
    # A window that warned and then fails: the incident is news.
    worse, _ = check_messages([failure("w2", "block_share", ERROR, record_id=4)], reported, UI, PREFIXES)
    assert [(m["window"], m["severity"]) for m in worse] == [("w2", ERROR)]


def test_what_was_sent_is_remembered_within_a_bound() -> None:
    reported = {f"tribune|old{i}": ERROR for i in range(MAX_REMEMBERED)}
    _, after = check_messages([failure("new", "block", ERROR)], reported, UI, PREFIXES)
    assert len(after) == MAX_REMEMBERED and "tribune|new" in after and "tribune|old0" not in after


def test_an_exception_is_its_last_line_with_its_class() -> None:
    assert error_line("RuntimeError", "RuntimeError: source down\n") == "RuntimeError: source down"
    assert error_line("SchemaError", "SchemaError: column 'x'\n  failure cases: 3\n") == (
        "SchemaError: failure cases: 3"
    )
    assert error_line(None, "Run timed out after 600 s.") == "Run timed out after 600 s."
    assert error_line(None, "") == "run failed"

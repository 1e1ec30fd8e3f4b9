"""Failed checks become as few messages as tell the whole story.

- An **incident** is one window of one site with a failure of ERROR severity (a blocking check:
  nothing downstream of that window ran). It is one message: the asset and check that failed
  worst, its own description as the reason, and the window's other failures under `also`.
- **Warnings** (a check that failed with WARN severity: too few reading pairs to judge, volume
  below the warning share, a stale tracker, a high share of bad lines) are grouped: one message
  per site and sensor tick, every warning listed under `warnings`.
- What was sent is remembered (`Reported`): a later failure of an incident already sent (a
  rerun, a run retry, the other check of the same window evaluated a tick later) sends nothing
  again; a warning already sent is not repeated; an incident that follows its warnings is sent.

Messages are JSON objects with the same keys whatever their kind, so a receiver formats one way:
{"site", "window", "asset", "check", "severity", "reason", "run_id", "url", "also", "warnings"}.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

ERROR, WARN = "ERROR", "WARN"
MAX_REASON_CHARS = 500
# Incidents and warnings remembered as sent (oldest forgotten first): days of every site's
# windows, while the sensor's cursor (stored with each tick that changes it) stays small.
MAX_REMEMBERED = 500

# Sent so far: "site|window" -> ERROR for an incident, "site|window|asset|check" -> WARN for a warning.
Reported = dict[str, str]


@dataclass(frozen=True)
class CheckFailure:
    """One failed check evaluation, as Dagster recorded it."""

    site: str | None
    window: str | None  # the window's key; for a check on a model asset, the window it was trained as of
    asset: str
    check: str
    severity: str  # ERROR or WARN
    reason: str  # the check's own description of what it saw
    run_id: str
    record_id: int  # Dagster's record id: the order the failures happened in

    @property
    def incident(self) -> str:
        return f"{self.site}|{self.window}"

    @property
    def item(self) -> str:
        return f"{self.site}|{self.window}|{self.asset}|{self.check}"


def message(
    *,
    site: str | None,
    window: str | None,
    asset: str | None,
    check: str | None,
    severity: str,
    reason: str,
    run_id: str | None,
    url: str,
    also: list[dict[str, Any]] | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "site": site,
        "window": window,
        "asset": asset,
        "check": check,
        "severity": severity,
        "reason": reason[:MAX_REASON_CHARS],
        "run_id": run_id,
        "url": url,
        "also": also or [],
        "warnings": warnings or [],
    }


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def assets_url(ui_url: str, site_prefix: str | None) -> str:
    """The UI's asset catalogue, narrowed to the site's assets (their key prefix)."""
    return f"{ui_url.rstrip('/')}/assets/{site_prefix}" if site_prefix else f"{ui_url.rstrip('/')}/assets"


def check_messages(
    failures: list[CheckFailure], reported: Reported, ui_url: str, prefix_of_site: dict[str, str]
) -> tuple[list[dict[str, Any]], Reported]:
    """The messages for this tick's failed checks, and what is remembered as sent afterwards."""
    reported = dict(reported)
    fresh = [f for f in sorted(failures, key=lambda f: f.record_id) if not _already_sent(f, reported)]
    by_incident: dict[str, list[CheckFailure]] = defaultdict(list)
    for failure in fresh:
        by_incident[failure.incident].append(failure)

    messages: list[dict[str, Any]] = []
    warnings_by_site: dict[str | None, list[CheckFailure]] = defaultdict(list)
    for incident, window_failures in by_incident.items():
        errors = [f for f in window_failures if f.severity == ERROR]
        if not errors:
            warnings_by_site[window_failures[0].site].extend(window_failures)
            continue
        worst = errors[0]
        messages.append(
            message(
                site=worst.site,
                window=worst.window,
                asset=worst.asset,
                check=worst.check,
                severity=ERROR,
                reason=worst.reason,
                run_id=worst.run_id,
                url=run_url(ui_url, worst.run_id),
                also=[_listed(f) for f in window_failures if f is not worst],
            )
        )
        reported[incident] = ERROR

    for site, warnings in warnings_by_site.items():
        windows = sorted({f.window for f in warnings if f.window})
        summary = "; ".join(f"{f.window} {f.asset} {f.check}: {f.reason}" for f in warnings)
        messages.append(
            message(
                site=site,
                window=_span(windows),
                asset=None,
                check=None,
                severity=WARN,
                reason=f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}: {summary}",
                run_id=None,
                url=assets_url(ui_url, prefix_of_site.get(site or "")),
                warnings=[_listed(f) for f in warnings],
            )
        )
        for failure in warnings:
            reported[failure.item] = WARN

    return messages, _forget_oldest(reported)


def _already_sent(failure: CheckFailure, reported: Reported) -> bool:
    if reported.get(failure.incident) == ERROR:
        return True  # the window's incident is out: nothing worse can be said about it
    return failure.severity == WARN and failure.item in reported


def _listed(failure: CheckFailure) -> dict[str, Any]:
    return {
        "window": failure.window,
        "asset": failure.asset,
        "check": failure.check,
        "severity": failure.severity,
        "reason": failure.reason[:MAX_REASON_CHARS],
        "run_id": failure.run_id,
    }


def _span(windows: list[str]) -> str | None:
    if not windows:
        return None
    return windows[0] if len(windows) == 1 else f"{windows[0]}..{windows[-1]}"


def _forget_oldest(reported: Reported) -> Reported:
    # Dicts keep insertion order; re-inserting is not needed: an entry is only added once.
    excess = len(reported) - MAX_REMEMBERED
    return dict(list(reported.items())[excess:]) if excess > 0 else reported


def error_line(class_name: str | None, text: str) -> str:
    """An exception as the last line of its traceback: `Class: message` (a message's last line
    when it has several: where Python's own traceback ends)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if class_name and not last.startswith(class_name):
        return f"{class_name}: {last}" if last else class_name
    return last or "run failed"

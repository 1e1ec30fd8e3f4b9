"""Checks the settings models share: a value a site file gets wrong is a ValueError, which pydantic
reports with the file's field."""

from __future__ import annotations

import re


def regular_expression(value: str) -> re.Pattern[str]:
    """`value` compiled; a ValueError when it is no regular expression."""
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {value!r}") from exc


def relative_path(value: str, what: str, root: str = "its root") -> str:
    """A path below its root: relative, without `..` (a site file cannot reach outside it)."""
    parts = value.replace("\\", "/").split("/")
    drive = len(value) > 1 and value[1] == ":"
    if not value or value.startswith(("/", "\\")) or ".." in parts or drive:
        raise ValueError(f"{what} must stay below {root} (relative, no '..'): {value!r}")
    return value

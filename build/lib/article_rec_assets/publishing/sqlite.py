"""SQLite, the embedded default's serving database: foreign keys switched on per connection, batched
inserts, and no lock of our own (SQLite serializes all writers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert


def connect_args(
    statement_timeout_seconds: float | None, lock_timeout_seconds: float | None, url_options: str = ""
) -> dict:
    """How long a writer waits for another's lock; SQLite has no statement timeout."""
    return {} if lock_timeout_seconds is None else {"timeout": lock_timeout_seconds}


def configure(engine: Engine) -> None:
    """SQLite ignores ON DELETE CASCADE unless foreign keys are switched on per connection."""
    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))


def insert(table: Table) -> Insert:
    """An INSERT that can say what to do on a conflict (`on_conflict_do_update`)."""
    return sqlite.insert(table)


def lock(conn: Connection, key: str) -> None:
    """Nothing to do: SQLite lets one writer at a time into the database."""


def write_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])

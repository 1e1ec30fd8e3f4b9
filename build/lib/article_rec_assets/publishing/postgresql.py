"""PostgreSQL, the production serving database: COPY for bulk rows, an advisory lock per model slot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Insert


def connect_args(
    statement_timeout_seconds: float | None, lock_timeout_seconds: float | None, url_options: str = ""
) -> dict:
    """Timeouts as options of every session (a SET would be undone by the pool's rollbacks),
    after the URL's own `options` (a search_path, say), which they would otherwise replace."""
    options = [url_options] if url_options else []
    if statement_timeout_seconds is not None:
        options.append(f"-c statement_timeout={round(statement_timeout_seconds * 1000)}")
    if lock_timeout_seconds is not None:
        options.append(f"-c lock_timeout={round(lock_timeout_seconds * 1000)}")
    return {"options": " ".join(options)} if options else {}


def configure(engine: Engine) -> None:
    """Nothing to switch on: PostgreSQL enforces foreign keys and cascades by itself."""


def insert(table: Table) -> Insert:
    """An INSERT that can say what to do on a conflict (`on_conflict_do_update`)."""
    return postgresql.insert(table)


def lock(conn: Connection, key: str) -> None:
    """Serialize the transactions that name `key` (released at commit or rollback)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def write_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """COPY rows in: the fastest bulk load, and the driver escapes every value."""
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)

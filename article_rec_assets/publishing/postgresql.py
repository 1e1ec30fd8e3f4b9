"""PostgreSQL, the production serving database: COPY for bulk rows, an advisory lock per model slot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Insert


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

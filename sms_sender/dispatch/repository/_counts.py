"""Folding the counters' deltas together, so a count reads a row or two per key.

The triggers of migration ``20261201_load_0001`` keep ``mailing_report_counts`` and
``client_facet_counts`` exact as signed deltas. On PostgreSQL every statement that changes
reports adds a row per key it touched, so a running mailing's keys gather rows; folding replaces
the rows of each such key by their sum, in one statement, and drops keys that sum to zero (a
deleted mailing's). It is exact under concurrency: the DELETE … RETURNING takes only rows its
snapshot saw, a concurrent fold skips rows this one deleted, and readers see either the rows or
their sum, never both. On SQLite the triggers keep one row per key, so only zeros are dropped.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# (table, key columns, count column)
_COUNTERS = (
    ("mailing_report_counts", "mailing_id, status", "reports"),
    ("client_facet_counts", "facet, value", "clients"),
)


async def fold_counts(connection: AsyncConnection) -> int:
    """Sum each counter key's rows into one and drop zero keys; how many rows went."""
    folded = 0
    for table, key, count in _COUNTERS:
        if connection.dialect.name == "postgresql":
            statement = _fold_postgresql(table, key, count)
        else:
            statement = f"DELETE FROM {table} WHERE {count} = 0"
        result = await connection.execute(text(statement))
        folded += int(result.rowcount)
    return folded


def _fold_postgresql(table: str, key: str, count: str) -> str:
    return f"""
        WITH crowded AS (
            SELECT {key} FROM {table} GROUP BY {key}
            HAVING count(*) > 1 OR sum({count}) = 0
        ), folded AS (
            DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM crowded)
            RETURNING {key}, {count}
        )
        INSERT INTO {table} ({key}, {count})
        SELECT {key}, sum({count}) FROM folded GROUP BY {key} HAVING sum({count}) <> 0
    """

"""Folding the counters' deltas together, so a count reads a row or two per key.

The triggers of migrations ``20261201_load_0001`` and ``20261202_skipcounts_0001`` keep
``mailing_report_counts`` (by mailing, status and skipped reason) and
``client_facet_counts`` exact as signed deltas. On PostgreSQL every statement that changes
reports adds a row per key it touched, so a running mailing's keys gather rows; folding replaces
the rows of each such key by their sum, in one statement, and drops keys that sum to zero (a
deleted mailing's), exact under concurrency (``dialects.fold_counter``). On SQLite the
triggers keep one row per key, so only zeros are dropped.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from sms_sender import dialects

# (table, key columns, count column)
_COUNTERS = (
    ("mailing_report_counts", "mailing_id, status, reason", "reports"),
    ("client_facet_counts", "facet, value", "clients"),
)


async def fold_counts(connection: AsyncConnection) -> int:
    """Sum each counter key's rows into one and drop zero keys; how many rows went."""
    folded = 0
    for table, key, count in _COUNTERS:
        folded += await dialects.fold_counter(connection, table, key, count)
    return folded

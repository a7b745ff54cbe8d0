"""counters: skipped reports counted by reason too, so a mailing's stats read no report

``GET /mailings/{id}/stats`` counted a mailing's skipped reports by reason (their ``error``)
with a GROUP BY over those reports: 0.36-0.55 s per request on SQLite for one advertising
mailing of 1,000,000 clients without consent, asked every 2 s by the console.

``mailing_report_counts`` gets a third key column, ``reason``: the report's ``error`` when it
is ``skipped``, ``''`` for every other status (never NULL: SQLite's triggers add to the row
whose key *equals* the report's, and NULL equals nothing; a skipped report without an error
counts under ``''`` too). Readers by status sum over reasons as they summed over deltas; the
stats route sums one mailing's skipped rows by reason (``reports.repository``).

The same triggers keep it, in the same statements as before, so no other status pays a
statement more:

* PostgreSQL: ``count_reports()`` groups each statement's transition tables by (mailing,
  status, reason) instead of (mailing, status); an UPDATE that changes only a skipped report's
  error moves one count from the old reason to the new one.
* SQLite: the row triggers key their UPDATE and INSERT by the reason too, and the update
  trigger also fires when a skipped report's error changes. The fan-out's count at the end
  (``reports.repository.counted_at_the_end``) groups by the same reason.

The upgrade recounts the skipped reports of every mailing from the reports (writers locked
out on PostgreSQL); the downgrade puts each mailing's skipped counts back under one row and
the old triggers back. A later migration that rebuilds ``reports`` on SQLite
(``batch_alter_table``) drops its triggers and must create this migration's again
(:func:`create_report_triggers`); tests/dispatch/test_counters.py fails if it does not.

Revision ID: 20261202_skipcounts_0001
Revises: 20261202_tidy_0001
Create Date: 2026-12-02 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_skipcounts_0001"
down_revision: str | None = "20261202_tidy_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = ("reports_counted_insert", "reports_counted_update", "reports_counted_delete")


def _reason(row: str = "") -> str:
    """The counter's reason of a report (``row``: ``NEW.``, ``OLD.`` or nothing)."""
    return f"CASE WHEN {row}status = 'skipped' THEN coalesce({row}error, '') ELSE '' END"


def _postgresql_function(by_reason: bool) -> str:
    """``count_reports()``: one counter row per key a statement touched (migration load_0001)."""
    key = "mailing_id, status, reason" if by_reason else "mailing_id, status"
    reason = f", {_reason()} AS reason" if by_reason else ""
    return f"""
    CREATE OR REPLACE FUNCTION count_reports() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO mailing_report_counts ({key}, reports)
            SELECT {key}, count(*) FROM (
                SELECT mailing_id, status{reason} FROM new_reports
            ) AS added
            GROUP BY {key};
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO mailing_report_counts ({key}, reports)
            SELECT {key}, -count(*) FROM (
                SELECT mailing_id, status{reason} FROM old_reports
            ) AS removed
            GROUP BY {key};
        ELSE
            INSERT INTO mailing_report_counts ({key}, reports)
            SELECT {key}, sum(change) FROM (
                SELECT mailing_id, status{reason}, -1 AS change FROM old_reports
                UNION ALL
                SELECT mailing_id, status{reason}, 1 FROM new_reports
            ) AS changes
            GROUP BY {key}
            HAVING sum(change) <> 0;
        END IF;
        RETURN NULL;
    END $$
    """


def _sqlite_count(row: str, change: int, by_reason: bool) -> str:
    """Add ``change`` to the row's key, making the key's row if it is not there yet."""
    key = {"mailing_id": f"{row}.mailing_id", "status": f"{row}.status"}
    if by_reason:
        key["reason"] = _reason(f"{row}.")
    where = " AND ".join(f"{name} = {value}" for name, value in key.items())
    # changes() inside a trigger counts the trigger's own last statement.
    return (
        f"UPDATE mailing_report_counts SET reports = reports + ({change}) WHERE {where}; "
        f"INSERT INTO mailing_report_counts ({', '.join(key)}, reports) "
        f"SELECT {', '.join(key.values())}, {change} WHERE changes() = 0;"
    )


def _sqlite_triggers(by_reason: bool) -> list[str]:
    if by_reason:
        changed = (
            "AFTER UPDATE OF mailing_id, status, error ON reports "
            "WHEN OLD.mailing_id IS NOT NEW.mailing_id OR OLD.status IS NOT NEW.status "
            "OR (NEW.status = 'skipped' AND OLD.error IS NOT NEW.error)"
        )
    else:
        changed = (
            "AFTER UPDATE OF mailing_id, status ON reports "
            "WHEN OLD.mailing_id IS NOT NEW.mailing_id OR OLD.status IS NOT NEW.status"
        )
    return [
        f"""
        CREATE TRIGGER reports_counted_insert AFTER INSERT ON reports BEGIN
            {_sqlite_count("NEW", 1, by_reason)}
        END
        """,
        f"""
        CREATE TRIGGER reports_counted_update {changed} BEGIN
            {_sqlite_count("OLD", -1, by_reason)}
            {_sqlite_count("NEW", 1, by_reason)}
        END
        """,
        f"""
        CREATE TRIGGER reports_counted_delete AFTER DELETE ON reports BEGIN
            {_sqlite_count("OLD", -1, by_reason)}
        END
        """,
    ]


def create_report_triggers(by_reason: bool = True) -> None:
    """The counting of reports, in the current database's dialect (PostgreSQL's triggers of
    migration load_0001 call ``count_reports()``, which this replaces)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(_postgresql_function(by_reason)))
        return
    _drop_sqlite_triggers()
    for statement in _sqlite_triggers(by_reason):
        op.execute(sa.text(statement))


def _drop_sqlite_triggers() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in _TRIGGERS:
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))


def _lock_out_writers() -> None:
    """PostgreSQL: no report changes while the counting changes and the counts are taken."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("LOCK TABLE reports IN SHARE ROW EXCLUSIVE MODE"))


def upgrade() -> None:
    _lock_out_writers()
    op.add_column(
        "mailing_report_counts",
        sa.Column("reason", sa.String(length=1000), server_default="", nullable=False),
    )
    create_report_triggers(by_reason=True)
    op.execute(sa.text("DELETE FROM mailing_report_counts WHERE status = 'skipped'"))
    op.execute(
        sa.text(
            "INSERT INTO mailing_report_counts (mailing_id, status, reason, reports) "
            "SELECT mailing_id, 'skipped', coalesce(error, ''), count(*) FROM reports "
            "WHERE status = 'skipped' GROUP BY mailing_id, coalesce(error, '')"
        )
    )


def downgrade() -> None:
    _lock_out_writers()
    # SQLite's rebuild of the table renames it, which its triggers on reports would refuse.
    _drop_sqlite_triggers()
    op.execute(sa.text("DELETE FROM mailing_report_counts WHERE status = 'skipped'"))
    with op.batch_alter_table("mailing_report_counts") as batch:
        batch.drop_column("reason")
    create_report_triggers(by_reason=False)
    op.execute(
        sa.text(
            "INSERT INTO mailing_report_counts (mailing_id, status, reports) "
            "SELECT mailing_id, 'skipped', count(*) FROM reports "
            "WHERE status = 'skipped' GROUP BY mailing_id"
        )
    )

"""counters: reports per (mailing, status) and clients per tag/operator code, kept by triggers

Stats, the mailings list, the console and GET /tags counted with a GROUP BY or a DISTINCT over
every report or client, which grew with the data (about 0.2 s each at 1M). Now the database
keeps two small tables exact in the very transaction that changes a report or a client, so
every code path (the engine, the API, the console, the CLI, a hand-written UPDATE) is counted
without any of them knowing.

Both tables hold signed deltas and a reader sums them per key:

* PostgreSQL: statement-level triggers with transition tables add one row per key a statement
  touched (a fan-out of 1M reports adds one row, not 1M). Rows are only ever inserted, so
  concurrent workers never wait on each other's counter rows and cannot deadlock on them; the
  scheduler folds the deltas together now and then (``dispatch.repository.fold_counts``).
* SQLite has only row triggers: each changed row adds or subtracts one on the key's single row
  (one writer at a time, so there is nothing to contend for).

A later migration that rebuilds ``reports`` or ``clients`` on SQLite (``batch_alter_table``)
drops these triggers with the old table and must create them again (``create_triggers``;
for ``reports``, since ``20261202_skipcounts_0001`` counts skipped reports by reason, that
migration's ``create_report_triggers``); tests/dispatch/test_counters.py fails if it does not.

Revision ID: 20261201_load_0001
Revises: 20261201_consent_0001
Create Date: 2026-12-01 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_load_0001"
down_revision: str | None = "20261201_consent_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL plans a branch's SQL only when it runs, so each branch names only the transition
# tables its trigger declares.
_POSTGRESQL_FUNCTIONS = [
    """
    CREATE FUNCTION count_reports() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO mailing_report_counts (mailing_id, status, reports)
            SELECT mailing_id, status, count(*) FROM new_reports GROUP BY mailing_id, status;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO mailing_report_counts (mailing_id, status, reports)
            SELECT mailing_id, status, -count(*) FROM old_reports GROUP BY mailing_id, status;
        ELSE
            INSERT INTO mailing_report_counts (mailing_id, status, reports)
            SELECT mailing_id, status, sum(change) FROM (
                SELECT mailing_id, status, -1 AS change FROM old_reports
                UNION ALL
                SELECT mailing_id, status, 1 FROM new_reports
            ) AS changes
            GROUP BY mailing_id, status
            HAVING sum(change) <> 0;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION count_client_facets() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO client_facet_counts (facet, value, clients)
            SELECT facet, value, count(*) FROM (
                SELECT 'tag' AS facet, tag AS value FROM new_clients WHERE tag IS NOT NULL
                UNION ALL
                SELECT 'operator_code', operator_code FROM new_clients
            ) AS added
            GROUP BY facet, value;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO client_facet_counts (facet, value, clients)
            SELECT facet, value, -count(*) FROM (
                SELECT 'tag' AS facet, tag AS value FROM old_clients WHERE tag IS NOT NULL
                UNION ALL
                SELECT 'operator_code', operator_code FROM old_clients
            ) AS removed
            GROUP BY facet, value;
        ELSE
            INSERT INTO client_facet_counts (facet, value, clients)
            SELECT facet, value, sum(change) FROM (
                SELECT 'tag' AS facet, tag AS value, 1 AS change
                    FROM new_clients WHERE tag IS NOT NULL
                UNION ALL
                SELECT 'operator_code', operator_code, 1 FROM new_clients
                UNION ALL
                SELECT 'tag', tag, -1 FROM old_clients WHERE tag IS NOT NULL
                UNION ALL
                SELECT 'operator_code', operator_code, -1 FROM old_clients
            ) AS changes
            GROUP BY facet, value
            HAVING sum(change) <> 0;
        END IF;
        RETURN NULL;
    END $$
    """,
]


def _postgresql_triggers(table: str, function: str) -> list[str]:
    return [
        f"""
        CREATE TRIGGER {table}_counted_insert AFTER INSERT ON {table}
        REFERENCING NEW TABLE AS new_{table}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()
        """,
        f"""
        CREATE TRIGGER {table}_counted_update AFTER UPDATE ON {table}
        REFERENCING OLD TABLE AS old_{table} NEW TABLE AS new_{table}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()
        """,
        f"""
        CREATE TRIGGER {table}_counted_delete AFTER DELETE ON {table}
        REFERENCING OLD TABLE AS old_{table}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()
        """,
    ]


def _sqlite_add(table: str, key: dict[str, str], column: str, change: int) -> str:
    """Add ``change`` to the key's row of ``table``, making the row if it is not there yet."""
    where = " AND ".join(f"{name} = {value}" for name, value in key.items())
    names = ", ".join([*key, column])
    values = ", ".join([*key.values(), str(change)])
    # changes() inside a trigger counts the trigger's own last statement.
    return (
        f"UPDATE {table} SET {column} = {column} + ({change}) WHERE {where}; "
        f"INSERT INTO {table} ({names}) SELECT {values} WHERE changes() = 0;"
    )


def _sqlite_report_count(row: str, change: int) -> str:
    key = {"mailing_id": f"{row}.mailing_id", "status": f"{row}.status"}
    return _sqlite_add("mailing_report_counts", key, "reports", change)


def _sqlite_facet_counts(row: str, change: int) -> str:
    tag = {"facet": "'tag'", "value": f"{row}.tag"}
    operator = {"facet": "'operator_code'", "value": f"{row}.operator_code"}
    add_tag = _sqlite_add("client_facet_counts", tag, "clients", change)
    # A NULL tag is no facet: the UPDATE matches nothing then and the INSERT is filtered here.
    add_tag = add_tag.replace(
        "WHERE changes() = 0", f"WHERE changes() = 0 AND {row}.tag IS NOT NULL"
    )
    return add_tag + " " + _sqlite_add("client_facet_counts", operator, "clients", change)


_SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER reports_counted_insert AFTER INSERT ON reports BEGIN
        {_sqlite_report_count("NEW", 1)}
    END
    """,
    f"""
    CREATE TRIGGER reports_counted_update AFTER UPDATE OF mailing_id, status ON reports
    WHEN OLD.mailing_id IS NOT NEW.mailing_id OR OLD.status IS NOT NEW.status BEGIN
        {_sqlite_report_count("OLD", -1)}
        {_sqlite_report_count("NEW", 1)}
    END
    """,
    f"""
    CREATE TRIGGER reports_counted_delete AFTER DELETE ON reports BEGIN
        {_sqlite_report_count("OLD", -1)}
    END
    """,
    f"""
    CREATE TRIGGER clients_counted_insert AFTER INSERT ON clients BEGIN
        {_sqlite_facet_counts("NEW", 1)}
    END
    """,
    f"""
    CREATE TRIGGER clients_counted_update AFTER UPDATE OF tag, operator_code ON clients
    WHEN OLD.tag IS NOT NEW.tag OR OLD.operator_code IS NOT NEW.operator_code BEGIN
        {_sqlite_facet_counts("OLD", -1)}
        {_sqlite_facet_counts("NEW", 1)}
    END
    """,
    f"""
    CREATE TRIGGER clients_counted_delete AFTER DELETE ON clients BEGIN
        {_sqlite_facet_counts("OLD", -1)}
    END
    """,
]

_TRIGGERS = [
    f"{table}_counted_{event}"
    for table in ("reports", "clients")
    for event in ("insert", "update", "delete")
]


def create_triggers() -> None:
    """The triggers that keep both tables exact, in the current database's own dialect."""
    if op.get_bind().dialect.name == "postgresql":
        for statement in [
            *_postgresql_triggers("reports", "count_reports"),
            *_postgresql_triggers("clients", "count_client_facets"),
        ]:
            op.execute(sa.text(statement))
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(sa.text(statement))


def upgrade() -> None:
    op.create_table(
        "mailing_report_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "mailing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_report_counts")),
    )
    op.create_index(
        op.f("ix_mailing_report_counts_mailing_id_status"),
        "mailing_report_counts",
        ["mailing_id", "status"],
    )
    op.create_table(
        "client_facet_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("facet", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("clients", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_facet_counts")),
    )
    op.create_index(
        op.f("ix_client_facet_counts_facet_value"), "client_facet_counts", ["facet", "value"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # No other writer while the triggers are made and the counts taken.
        op.execute(sa.text("LOCK TABLE reports, clients IN SHARE ROW EXCLUSIVE MODE"))
        for function in _POSTGRESQL_FUNCTIONS:
            op.execute(sa.text(function))
    create_triggers()
    op.execute(
        sa.text(
            "INSERT INTO mailing_report_counts (mailing_id, status, reports) "
            "SELECT mailing_id, status, count(*) FROM reports GROUP BY mailing_id, status"
        )
    )
    op.execute(
        sa.text(
            "INSERT INTO client_facet_counts (facet, value, clients) "
            "SELECT 'tag', tag, count(*) FROM clients WHERE tag IS NOT NULL GROUP BY tag "
            "UNION ALL "
            "SELECT 'operator_code', operator_code, count(*) FROM clients GROUP BY operator_code"
        )
    )


def downgrade() -> None:
    for trigger in _TRIGGERS:
        table = trigger.split("_", 1)[0]
        if op.get_bind().dialect.name == "postgresql":
            op.execute(sa.text(f"DROP TRIGGER {trigger} ON {table}"))
        else:
            op.execute(sa.text(f"DROP TRIGGER {trigger}"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP FUNCTION count_reports()"))
        op.execute(sa.text("DROP FUNCTION count_client_facets()"))
    op.drop_index(op.f("ix_client_facet_counts_facet_value"), table_name="client_facet_counts")
    op.drop_table("client_facet_counts")
    op.drop_index(
        op.f("ix_mailing_report_counts_mailing_id_status"), table_name="mailing_report_counts"
    )
    op.drop_table("mailing_report_counts")

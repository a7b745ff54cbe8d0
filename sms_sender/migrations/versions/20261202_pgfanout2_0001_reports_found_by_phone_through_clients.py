"""reports: a fan-out writes no phone entry; a phone's reports are found through its clients

``ix_reports_phone`` (GET /reports?phone=) took an entry for every report a fan-out made: one
index in five on PostgreSQL, and the only one whose keys come in random order from a real
directory (phones are not in client-id order), so every entry cost a descent to a random leaf
and a half-full page after each split. Now it holds only the reports of deleted clients
(``WHERE client_id IS NULL``). The others are found through their client: a report's phone is
its client's at the fan-out, so a phone's reports are those of the client that has it now, of
the clients that had it before, and of deleted clients (reports._pages). The clients that had
a phone before are kept in ``client_former_phones`` by a trigger on ``clients`` that adds the
old phone whenever a phone changes, in the same statement, whatever path changed it. A client's
delete leaves its rows there: its reports are then found by ``ix_reports_phone``, and a row
of a client id used again only adds a candidate whose reports are compared by phone anyway.

What a 1,000,000-report fan-out reads and writes on PostgreSQL (EXPLAIN (ANALYZE, BUFFERS,
WAL)): the first mailing 6.90M → 5.80M buffer accesses and 551 → 476 MB of WAL; the second over
the same clients 10.14M → 7.14M; with phones in random order (a real directory) 8.75M → 5.80M.

The upgrade fills ``client_former_phones`` from the reports whose phone is not their client's.
A later migration that rebuilds ``clients`` on SQLite (``batch_alter_table``) drops the trigger
and must create it again (:func:`create_trigger`); tests/reports/test_reports_api.py fails if
it does not.

Revision ID: 20261202_pgfanout2_0001
Revises: 20261202_skipcounts_0001
Create Date: 2026-12-02 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_pgfanout2_0001"
down_revision: str | None = "20261202_skipcounts_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_reports_phone"
_TRIGGER = "clients_former_phone"

_POSTGRESQL = [
    """
    CREATE FUNCTION remember_former_phone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO client_former_phones (phone, client_id) VALUES (OLD.phone, OLD.id)
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END;
    $$
    """,
    f"""
    CREATE TRIGGER {_TRIGGER} AFTER UPDATE OF phone ON clients
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone)
    EXECUTE FUNCTION remember_former_phone()
    """,
]
_SQLITE = [
    f"""
    CREATE TRIGGER {_TRIGGER} AFTER UPDATE OF phone ON clients
    WHEN OLD.phone IS NOT NEW.phone BEGIN
        INSERT OR IGNORE INTO client_former_phones (phone, client_id) VALUES (OLD.phone, OLD.id);
    END
    """
]


def create_trigger() -> None:
    """The trigger that keeps ``client_former_phones``, in the current database's dialect."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(_POSTGRESQL[1]))
    else:
        op.execute(sa.text(_SQLITE[0]))


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "client_former_phones",
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("client_id", big_id, nullable=False),
        sa.PrimaryKeyConstraint("phone", "client_id", name="pk_client_former_phones"),
    )
    op.execute(
        sa.text(
            "INSERT INTO client_former_phones (phone, client_id) "
            "SELECT DISTINCT reports.phone, reports.client_id FROM reports "
            "JOIN clients ON clients.id = reports.client_id WHERE reports.phone <> clients.phone"
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(_POSTGRESQL[0]))
    create_trigger()
    op.drop_index(_INDEX, table_name="reports")
    detached = sa.text("client_id IS NULL")
    op.create_index(_INDEX, "reports", ["phone"], postgresql_where=detached, sqlite_where=detached)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="reports")
    op.create_index(_INDEX, "reports", ["phone"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP TRIGGER {_TRIGGER} ON clients"))
        op.execute(sa.text("DROP FUNCTION remember_former_phone()"))
    else:
        op.execute(sa.text(f"DROP TRIGGER {_TRIGGER}"))
    op.drop_table("client_former_phones")

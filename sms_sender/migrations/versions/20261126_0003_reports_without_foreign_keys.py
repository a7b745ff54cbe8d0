"""reports without foreign keys; the unique (client_id, mailing_id) replaces the client_id index

Making a mailing's reports is one INSERT … SELECT; on PostgreSQL the two foreign keys of
reports cost it a trigger call each per report (half of the statement's time) and the index on
client_id another insertion per report. The services now do what ON DELETE did (a mailing's
delete deletes its reports, a client's delete detaches them), and client deletion finds a
client's reports through the unique constraint, whose columns are swapped for that.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint("fk_reports_client_id_clients", type_="foreignkey")
        batch_op.drop_constraint("fk_reports_mailing_id_mailings", type_="foreignkey")
        batch_op.drop_constraint("uq_reports_mailing_id_client_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_reports_client_id_mailing_id", ["client_id", "mailing_id"]
        )
        batch_op.drop_index("ix_reports_client_id")


def downgrade() -> None:
    # What the foreign keys would refuse, they would also have cleaned up: reports of a deleted
    # mailing go, reports of a deleted client are detached. Normally there is none of either.
    op.execute(
        sa.text(
            "DELETE FROM reports WHERE NOT EXISTS "
            "(SELECT 1 FROM mailings WHERE mailings.id = reports.mailing_id)"
        )
    )
    op.execute(
        sa.text(
            "UPDATE reports SET client_id = NULL WHERE client_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM clients WHERE clients.id = reports.client_id)"
        )
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_client_id", ["client_id"], unique=False)
        batch_op.drop_constraint("uq_reports_client_id_mailing_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_reports_mailing_id_client_id", ["mailing_id", "client_id"]
        )
        batch_op.create_foreign_key(
            "fk_reports_mailing_id_mailings",
            "mailings",
            ["mailing_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_reports_client_id_clients", "clients", ["client_id"], ["id"], ondelete="SET NULL"
        )

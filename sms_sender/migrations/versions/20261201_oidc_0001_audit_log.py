"""audit log: who did what to which client, message, mailing, token or user, from where

Revision ID: 20261201_oidc_0001
Revises: 20261201_console_0001
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_oidc_0001"
down_revision: str | None = "20261201_console_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index(
        op.f("ix_audit_entries_target_target_id_id"),
        "audit_entries",
        ["target", "target_id", "id"],
    )
    op.create_index(op.f("ix_audit_entries_actor_id"), "audit_entries", ["actor", "id"])


def downgrade() -> None:
    op.drop_table("audit_entries")

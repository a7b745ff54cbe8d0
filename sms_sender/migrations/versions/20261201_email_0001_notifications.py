"""notifications: the daily report's and the alerts' claims and delivery state

Revision ID: 20261201_email_0001
Revises: 20261201_oidc_0001
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sms_sender.db

revision: str = "20261201_email_0001"
down_revision: str | None = "20261201_oidc_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("claim", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column(
            "mailing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", sms_sender.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sms_sender.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", sms_sender.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sms_sender.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sms_sender.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "kind", "channel", "claim", name=op.f("uq_notifications_kind_channel_claim")
        ),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_mailing_id_kind_created_at"),
            ["mailing_id", "kind", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("notifications")

"""consent and opt-out: client consent fields, mailing purpose, audit history, suppression list

Existing mailings become ``service`` mailings (what they were: sent to everyone matching), so
nothing running changes behaviour. The suppression key is made here, at random, once per
database (see sms_sender.consent.models.SuppressionKey).

Revision ID: 20261201_consent_0001
Revises: 20261201_engine_0003
Create Date: 2026-12-01 16:00:00.000000
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sms_sender.db

revision: str = "20261201_consent_0001"
down_revision: str | None = "20261201_engine_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_at", sms_sender.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("consent_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("opted_out_at", sms_sender.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("opt_out_source", sa.String(length=200), nullable=True))
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), nullable=False, server_default="service")
        )
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.alter_column("purpose", server_default=None)
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("effective_at", sms_sender.db.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", sms_sender.db.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index(
        op.f("ix_consent_events_client_id_id"), "consent_events", ["client_id", "id"], unique=False
    )
    op.create_table(
        "suppressions",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("opted_out_at", sms_sender.db.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_suppressions")),
    )
    keys = op.create_table(
        "suppression_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_suppression_keys")),
    )
    op.bulk_insert(keys, [{"name": "default", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("suppression_keys")
    op.drop_table("suppressions")
    op.drop_index(op.f("ix_consent_events_client_id_id"), table_name="consent_events")
    op.drop_table("consent_events")
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("opt_out_source")
        batch_op.drop_column("opted_out_at")
        batch_op.drop_column("consent_source")
        batch_op.drop_column("consent_at")

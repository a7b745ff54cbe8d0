"""login_failures: the failed sign-in slowdown is kept in the database, shared by every process

It was kept in each process's memory, so with several API processes (or workers of one) each
slowed down on its own and a guesser spread over them went that many times faster.

Revision ID: 20261201_console2_0002
Revises: 20261201_console2_0001
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_console2_0002"
down_revision: str | None = "20261201_console2_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_allowed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_failed_at"), "login_failures", ["last_failed_at"])


def downgrade() -> None:
    op.drop_table("login_failures")

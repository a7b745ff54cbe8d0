"""mailings.paused_reason: why the engine paused a mailing (the provider's account cannot pay)

Revision ID: 20261201_engine_0002
Revises: 20261201_engine_0001
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_engine_0002"
down_revision: str | None = "20261201_engine_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_reason", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.drop_column("paused_reason")

"""api_tokens.reads_audit: only tokens created for it may read GET /api/v1/audit

Any API token could read the audit log (who did what, from where). Tokens made before this
revision keep every other right and lose that one; `sms-sender token create NAME --audit` or
the console's tokens page makes a token that has it.

Revision ID: 20261201_console2_0001
Revises: 20261201_load_0001
Create Date: 2026-12-01 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_console2_0001"
down_revision: str | None = "20261201_load_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("reads_audit", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("reads_audit")

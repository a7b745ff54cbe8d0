"""report status `unknown` replaces `interrupted`

Both meant "the provider may or may not have the message" (`interrupted` only for a worker
that died mid-send); `unknown` now also covers a send whose answer could not be read. The
status column is a plain string, so only existing rows change.

Revision ID: 20261201_engine_0001
Revises: 0003
Create Date: 2026-12-01 15:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_engine_0001"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE reports SET status = 'unknown' WHERE status = 'interrupted'"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE reports SET status = 'interrupted' WHERE status = 'unknown'"))

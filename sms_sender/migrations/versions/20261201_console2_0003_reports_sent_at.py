"""ix_reports_sent_at: the console's activity counts a range of sent_at, not every report

The dashboard's totals (today, 7 days) and its per-minute chart counted with a GROUP BY over
every report of the mailings that could have sent in the period (482 ms at 200k reports). A
partial index over the reports handed to a provider (sent_at not null) makes each a range: the
fan-out's pending reports add nothing to it, and a report enters it once, when it is sent.

On PostgreSQL the index is built in this revision's transaction, which blocks writes to
reports while it runs (seconds per million sent reports); run the migration in a quiet moment.

Revision ID: 20261201_console2_0003
Revises: 20261201_console2_0002
Create Date: 2026-12-01 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_console2_0003"
down_revision: str | None = "20261201_console2_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HANDED_OVER = sa.text("sent_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_reports_sent_at",
        "reports",
        ["sent_at"],
        postgresql_where=_HANDED_OVER,
        sqlite_where=_HANDED_OVER,
    )


def downgrade() -> None:
    op.drop_index("ix_reports_sent_at", table_name="reports")

"""reports: the (mailing_id, status) index gains a last key in id order, for a mailing's pages

A page of one mailing's reports read (mailing_id, status) and sorted the whole mailing, or
took the primary key (or (status, id)) for its id order, filtered by mailing, and at the end
of the mailing read every later mailing's reports. With ``id + 0`` as the last key, one
status of one mailing is in id order in this index and in no other (an expression: neither
planner can take another index for it), and reports.repository.page merges the statuses.
``id`` alone would not do on PostgreSQL: its planner then still picked the other indexes.

Revision ID: 20261201_pages_0001
Revises: 20261201_console2_0003
Create Date: 2026-12-01 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261201_pages_0001"
down_revision: str | None = "20261201_console2_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Made before the old one is dropped: the engine's statements never lack an index.
    op.create_index(
        "ix_reports_mailing_pages", "reports", ["mailing_id", "status", sa.text("(id + 0)")]
    )
    op.drop_index(op.f("ix_reports_mailing_id_status"), table_name="reports")


def downgrade() -> None:
    op.create_index(op.f("ix_reports_mailing_id_status"), "reports", ["mailing_id", "status"])
    op.drop_index("ix_reports_mailing_pages", table_name="reports")

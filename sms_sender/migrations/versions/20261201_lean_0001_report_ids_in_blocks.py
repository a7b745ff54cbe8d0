"""Report ids in blocks of 1,000 per connection on PostgreSQL: the fan-out's nextval per row

A fan-out gives each report an id from reports_id_seq. With the default CACHE 1 every nextval
locks the sequence's buffer and writes it (1,000,000 buffer accesses and 30,000 WAL records for
a 1M-report fan-out, about 4 % of its CPU); with CACHE 1000 a connection takes 1,000 ids at a
time and hands them out from memory. Ids stay unique; a connection that closes forgets the
rest of its block (gaps, harmless in a bigint), and two connections inserting at once take
ids from their own blocks, which no reader relies on (ids never said which report committed
first). SQLite gives rowids without a sequence: nothing to do there.

Revision ID: 20261201_lean_0001
Revises: 20261201_pages_0001
Create Date: 2026-12-01 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_lean_0001"
down_revision: str | None = "20261201_pages_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE reports_id_seq CACHE 1000")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE reports_id_seq CACHE 1")

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime

# The id order of a page of one operator code or tag, as the indexes spell it: an expression
# no other index has, so neither planner reads the primary key in id order and filters it (every
# client before the first match: a code only the latest import has cost 35-57 ms a page at
# 200,000 clients on PostgreSQL), nor sorts every match.
PAGE_ORDER_SQL = "(id + 0)"
_PAGE_ORDER = text(PAGE_ORDER_SQL)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    operator_code: Mapped[str] = mapped_column(String(3))
    tag: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Consent to advertising and the opt-out (sms_sender.consent): the later of the two wins,
    # so a client with opted_out_at set receives nothing, whatever consent_at says.
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_source: Mapped[str | None] = mapped_column(String(200))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opt_out_source: Mapped[str | None] = mapped_column(String(200))

    # The mailing filter and the lists select by these two. A page of one operator code, one
    # tag or one of each reads its index from the cursor on in PAGE_ORDER_SQL, never sorts.
    __table_args__ = (
        Index("ix_clients_operator_code_tag_pages", "operator_code", "tag", _PAGE_ORDER),
        Index("ix_clients_operator_code_pages", "operator_code", _PAGE_ORDER),
        Index("ix_clients_tag_pages", "tag", _PAGE_ORDER),
    )


class ClientFacetCount(Base):
    """A signed change in how many clients have one tag (or one operator code).

    Kept by database triggers in the transaction that changes a client (see the migration
    ``20261201_load_0001``); the directory's tags are the values whose rows sum above zero.
    """

    __tablename__ = "client_facet_counts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    facet: Mapped[str] = mapped_column(String(16))  # "tag" or "operator_code"
    value: Mapped[str] = mapped_column(String(64))
    clients: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "facet", "value"),)

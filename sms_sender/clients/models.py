from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sms_sender.db import Base, BigId, UTCDateTime


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

    # The mailing filter and the list endpoint select by these two.
    __table_args__ = (
        Index(None, "operator_code", "tag"),
        Index(None, "tag"),
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

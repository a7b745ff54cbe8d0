"""What the API shows of reports: one message to one client, and counts of them by status.

The statistics of mailings built from these counts are in sms_sender.mailings.schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from sms_sender.reports.models import ReportStatus

# Ids are 64-bit integers; a larger one cannot exist, and PostgreSQL refuses it as a parameter.

_BY_STATUS_EXAMPLE = {status.value: 0 for status in ReportStatus} | {
    "pending": 120,
    "sent": 30,
    "delivered": 845,
    "failed": 5,
}


def _every_status(counts: Mapping[str, int]) -> dict[ReportStatus, int]:
    """Counts keyed by every report status, 0 for a status no report is in."""
    return {status: counts.get(status.value, 0) for status in ReportStatus}


class ReportCounts(BaseModel):
    """How many reports there are, in total and in each status."""

    total: int = Field(description="Reports in every status.", examples=[1000])
    by_status: dict[ReportStatus, int] = Field(
        description="Reports in each status; every status is present, 0 when none.",
        examples=[_BY_STATUS_EXAMPLE],
    )

    @classmethod
    def of(cls, counts: Mapping[str, int], **fields: Any) -> Self:
        """Built from a status -> count mapping that may leave statuses out."""
        by_status = _every_status(counts)
        return cls(total=sum(by_status.values()), by_status=by_status, **fields)


class ReportRead(BaseModel):
    """One message to one client in one mailing, and what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[4021])
    mailing_id: int = Field(examples=[7])
    client_id: int | None = Field(
        description="null once the client was deleted; phone and text stay as they were sent.",
        examples=[315],
    )
    phone: str = Field(
        description="The client's phone when the mailing started.", examples=["79161234567"]
    )
    text: str = Field(
        description="The message text when the mailing started.",
        examples=["Winter sale: -20% on everything until Sunday!"],
    )
    status: ReportStatus = Field(
        description="pending → sending → sent (accepted by the provider) → delivered or "
        "undelivered (when the provider reports it); or failed (refused, or every attempt "
        "failed before anything reached the provider), expired (end_at came first), cancelled "
        "(mailing cancelled or client deleted), unknown (the provider may or may not have it: "
        "its answer was lost or unreadable, or the worker died mid-send; never re-sent "
        "automatically, see POST /api/v1/mailings/{id}/resend-unknown).",
        examples=["delivered"],
    )
    attempts: int = Field(description="Send attempts made so far.", examples=[1])
    created_at: datetime = Field(description="When the mailing started and created this report.")
    updated_at: datetime
    next_attempt_at: datetime = Field(
        description="Earliest time of the next send attempt while the report is pending "
        "(later than now when retrying after a failure or waiting for the send window)."
    )
    sent_at: datetime | None = Field(description="When the provider accepted the message.")
    provider: str | None = Field(
        description="The provider that took the message.", examples=["smsaero"]
    )
    provider_message_id: str | None = Field(
        description="The provider's id for the message, when it gives one.", examples=["8412033"]
    )
    error: str | None = Field(
        description="Why the report failed, expired, was cancelled, is unknown or was skipped "
        "(`opted_out`, `no_consent`); while pending, why the last attempt must be retried.",
        examples=[None],
    )

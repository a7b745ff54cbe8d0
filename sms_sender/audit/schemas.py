from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from sms_sender.audit.models import AuditAction, AuditSource, AuditTarget


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="The user or API token name that acted.", examples=["ops"])
    source: AuditSource = Field(description="Where from: api, admin (console), cli or system.")
    action: AuditAction
    target: AuditTarget = Field(description="The kind of thing acted on.")
    target_id: int | None = Field(description="Its id; null for an import of many clients.")
    detail: str | None = Field(
        description="What changed, in a few words.", examples=["end_at, send_window"]
    )

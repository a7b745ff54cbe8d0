"""Every ORM model, imported once so ``Base.metadata`` is complete (Alembic reads it)."""

from sms_sender.audit.models import AuditEntry
from sms_sender.auth.models import ApiToken, User, UserSession
from sms_sender.clients.models import Client, ClientFacetCount
from sms_sender.consent.models import ConsentEvent, Suppression, SuppressionKey
from sms_sender.db import Base
from sms_sender.dispatch.models import RateLimit, WorkerHeartbeat
from sms_sender.mailings.models import Mailing, MailingStatus
from sms_sender.messages.models import Message
from sms_sender.notifications.models import Notification
from sms_sender.reports.models import MailingReportCount, Report, ReportStatus

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Client",
    "ClientFacetCount",
    "ConsentEvent",
    "Mailing",
    "MailingReportCount",
    "MailingStatus",
    "Message",
    "Notification",
    "RateLimit",
    "Report",
    "ReportStatus",
    "Suppression",
    "SuppressionKey",
    "User",
    "UserSession",
    "WorkerHeartbeat",
]

"""The daily report and the alerts as e-mails (plain text and HTML) and as webhook JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sms_sender.notifications.models import NotificationKind
from sms_sender.notifications.schemas import Alert, DailyReport

_templates = Environment(
    loader=PackageLoader("sms_sender.notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_templates.filters["percent"] = lambda share: f"{share * 100:.1f}%"

ALERT_TITLES = {
    NotificationKind.MAILING_FINISHED: "mailing {id} finished",
    NotificationKind.MAILING_PAUSED: "mailing {id} was paused and needs a person",
    NotificationKind.FAILURE_SHARE: "mailing {id}: {share} of its messages failed",
    NotificationKind.UNKNOWN_REPORTS: "mailing {id}: {count} messages with an unknown outcome",
}


@dataclass(frozen=True)
class Letter:
    """An e-mail's words, before it has an envelope."""

    subject: str
    text: str
    html: str


def mailing_link(public_url: str, mailing_id: int) -> str | None:
    """The admin console's page of the mailing, when the service knows its own address."""
    return f"{public_url}/admin/mailings/{mailing_id}" if public_url else None


def daily_report(report: DailyReport, public_url: str) -> Letter:
    context = {"report": report, "totals": report.totals, "public_url": public_url}
    return Letter(
        subject=f"sms-sender daily report for {report.day.isoformat()} ({report.timezone})",
        text=_templates.get_template("daily_report.txt").render(context),
        html=_templates.get_template("daily_report.html").render(context),
    )


def alert_title(alert: Alert) -> str:
    payload = alert.payload
    return ALERT_TITLES[alert.kind].format(
        id=alert.mailing_id,
        share=f"{payload.get('failed_share', 0) * 100:.1f}%",
        count=payload.get("unknown_new", 0),
    )


def alert(alert: Alert, public_url: str) -> Letter:
    context = {
        "alert": alert,
        "title": alert_title(alert),
        "link": mailing_link(public_url, alert.mailing_id),
        "figures": alert.payload.get("figures"),
    }
    return Letter(
        subject=f"sms-sender alert: {context['title']}",
        text=_templates.get_template("alert.txt").render(context),
        html=_templates.get_template("alert.html").render(context),
    )


def alert_json(alert: Alert, public_url: str) -> dict[str, Any]:
    """The webhook's body: the kind, a sentence, the link and the figures."""
    return {
        "kind": alert.kind.value,
        "mailing_id": alert.mailing_id,
        "title": alert_title(alert),
        "url": mailing_link(public_url, alert.mailing_id),
        **alert.payload,
    }

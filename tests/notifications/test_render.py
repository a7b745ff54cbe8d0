"""The words of the mails: what comes from outside is escaped in HTML and kept as is in text."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sms_sender.notifications import render
from sms_sender.notifications.models import NotificationKind
from sms_sender.notifications.schemas import Alert, DailyReport, MailingFigures

MOMENT = datetime(2030, 1, 15, 5, 0, tzinfo=UTC)


def test_a_gateway_error_cannot_inject_html_into_the_report() -> None:
    mailing = MailingFigures(7, "running", MOMENT, MOMENT, {"failed": 2, "delivered": 1})
    report = DailyReport(
        date(2030, 1, 14), "UTC", MOMENT, [mailing], [('<a href="x">bad</a> & co', 2)]
    )

    letter = render.daily_report(report, public_url="")

    assert "&lt;a href=&#34;x&#34;&gt;bad&lt;/a&gt; &amp; co" in letter.html
    assert '<a href="x">' not in letter.html
    assert '  2: <a href="x">bad</a> & co' in letter.text
    assert "/admin/mailings/" not in letter.html + letter.text  # no PUBLIC_URL, no links


def test_an_alert_without_public_url_has_no_link_and_its_webhook_body_says_so() -> None:
    alert = Alert(
        NotificationKind.MAILING_PAUSED,
        7,
        "7@2030-01-15T05",
        {
            "reason": "<insufficient funds>",
            "figures": {
                "mailing_id": 7,
                "status": "paused",
                "total": 1,
                "by_status": {"pending": 1},
            },
        },
    )

    letter = render.alert(alert, public_url="")
    body = render.alert_json(alert, public_url="")

    assert "Reason: &lt;insufficient funds&gt;" in letter.html
    assert "Reason: <insufficient funds>" in letter.text
    assert "http" not in letter.text
    assert body["url"] is None
    assert body["reason"] == "<insufficient funds>"

"""Every text the console shows through _() has its Russian translation."""

from __future__ import annotations

import re
import string
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from sms_sender import reasons
from sms_sender.admin import i18n
from sms_sender.admin.i18n import Language, from_accept_language
from sms_sender.audit.models import AuditAction, AuditTarget
from sms_sender.errors import Reason
from sms_sender.mailings.models import MailingStatus
from sms_sender.reports.models import ReportStatus

ADMIN = Path(i18n.__file__).parent
# _("…") or _('…') with a literal inside: the texts a page passes to the translator.
LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def _texts() -> set[str]:
    found = set()
    for path in [*ADMIN.glob("templates/*.html"), *ADMIN.glob("*.py")]:
        for match in LITERAL.finditer(path.read_text()):
            found.add(match.group(1) if match.group(1) is not None else match.group(2))
    return found


def test_every_console_text_has_a_russian_translation() -> None:
    texts = _texts()
    assert len(texts) > 150  # the scan itself works
    assert sorted(texts - i18n.RUSSIAN.keys()) == []


def test_every_status_shown_has_a_russian_name() -> None:
    statuses = {*ReportStatus, *MailingStatus}
    assert sorted(str(status) for status in statuses if status not in i18n.RUSSIAN) == []


def _slots(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_reason_has_a_russian_text_with_the_same_slots() -> None:
    catalogue = [value for value in vars(reasons).values() if isinstance(value, Reason)]
    assert len(catalogue) > 50  # the scan itself works
    assert len({reason.code for reason in catalogue}) == len(catalogue)  # codes are unique
    missing = sorted(reason.code for reason in catalogue if reason.code not in i18n.ERROR_TEXTS)
    assert missing == []
    differing = [
        reason.code
        for reason in catalogue
        if _slots(reason.text) != _slots(i18n.ERROR_TEXTS[reason.code])
    ]
    assert differing == []


def test_pydantic_errors_are_translated_by_type_with_their_values() -> None:
    class Form(BaseModel):
        tag: str = Field(max_length=5)
        count: int = Field(ge=1)

    try:
        Form.model_validate({"tag": "toolong", "count": 0})
    except ValidationError as invalid:
        said = [
            i18n.say_error(Language.RU, item["type"], item.get("ctx", {}), item["msg"])
            for item in invalid.errors()
        ]
    assert said == ["нужно не больше 5 симв.", "нужно не меньше 1"]
    english = i18n.say_error(Language.EN, "string_too_long", {"max_length": 5}, "as given")
    assert english == "as given"
    unknown = i18n.say_error(Language.RU, "no_such_code", {}, "as given")
    assert unknown == "as given"


def test_every_audit_action_and_target_has_a_russian_name() -> None:
    named = {*AuditAction, *AuditTarget}
    assert sorted(str(name) for name in named if name not in i18n.RUSSIAN) == []


def test_accept_language_honours_quality_values() -> None:
    assert from_accept_language("de-DE,ru;q=0.8,en;q=0.9") is Language.EN
    assert from_accept_language("ru-RU") is Language.RU
    assert from_accept_language("fr, *;q=0.1") is Language.EN
    assert from_accept_language("en;q=bad, ru;q=0.5") is Language.RU

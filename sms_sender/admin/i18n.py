# ruff: noqa: RUF001 (Russian text: Cyrillic letters that look Latin are meant)
"""The console in English and Russian: chosen by a cookie, else the browser's Accept-Language.

Pages are written in English and every text passes through ``_()``; ``RUSSIAN`` maps it to its
translation. A text missing there shows in English (tests/admin/test_i18n.py lists them).

Errors from the services and schemas are translated by their stable code instead
(:func:`say_error`): ``ERROR_TEXTS`` holds, for each reason in sms_sender/reasons.py and for
pydantic's common error types, the Russian text with the same ``{slots}``. The API keeps English.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from fastapi import Request

from sms_sender.audit.models import AuditSource
from sms_sender.consent.endpoints import INBOUND_ACTOR, STOP_LIST_SOURCE
from sms_sender.consent.service import SUPPRESSION_LIST

LANGUAGE_COOKIE = "sms_sender_lang"


class Language(StrEnum):
    EN = "en"
    RU = "ru"


def language_of(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in Language.__members__.values():
        return Language(chosen)
    return from_accept_language(request.headers.get("accept-language", ""))


def from_accept_language(header: str) -> Language:
    """The first of our languages in the header's order of preference (q values honoured)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for _quality, _position, primary in sorted(ranked):
        if primary in Language.__members__.values():
            return Language(primary)
    return Language.EN


def say_error(language: Language, code: str | None, values: Mapping[str, Any], english: str) -> str:
    """An error's text in ``language``: found by its code, else the English it came with."""
    template = ERROR_TEXTS.get(code or "") if language is Language.RU else None
    if template is None:
        return english
    # A status is a word the console names in Russian too (running, paused …).
    shown = {
        key: RUSSIAN.get(str(value), value) if key == "status" else value
        for key, value in values.items()
    }
    try:
        return string.Formatter().vformat(template, (), shown)
    except (KeyError, IndexError, ValueError):
        return english


# The names the service itself writes into consent sources and actors; anything else there is
# what a person typed (a form, a shop, a user's name) and is shown as typed.
_RECORDED_NAMES = {
    STOP_LIST_SOURCE: "импорт стоп-листа",
    INBOUND_ACTOR: "входящий вебхук",
    SUPPRESSION_LIST: "стоп-лист",
}
# An actor is ``<where>:<name>`` (consent.service.current_actor_label); the where is ours.
_ACTOR_SOURCES = {
    AuditSource.API.value: "API",
    AuditSource.ADMIN.value: "консоль",
    AuditSource.CLI.value: "командная строка",
    AuditSource.SYSTEM.value: "система",
}


def say_recorded(language: Language, text: str | None) -> str:
    """A stored consent source or actor: the service's own names in ``language``, the rest as is.

    ``suppression list: <source>`` (an opt-out carried over from the suppression list) keeps
    its source as typed; ``api:<name>`` and the like name where the change came from.
    """
    if not text or language is not Language.RU:
        return text or ""
    if text in _RECORDED_NAMES:
        return _RECORDED_NAMES[text]
    head, colon, rest = text.partition(":")
    if colon and head in _RECORDED_NAMES:
        return f"{_RECORDED_NAMES[head]}:{rest}"
    if colon and head in _ACTOR_SOURCES:
        return f"{_ACTOR_SOURCES[head]}:{rest}"
    return text


def translator(language: Language) -> Callable[[str], str]:
    if language is Language.RU:
        return lambda text: RUSSIAN.get(text, text)
    return lambda text: text


RUSSIAN: dict[str, str] = {
    # layout and sign-in
    "SMS sender": "SMS-рассылки",
    "Dashboard": "Сводка",
    "Clients": "Клиенты",
    "Messages": "Сообщения",
    "Mailings": "Рассылки",
    "API tokens": "API-токены",
    "Users": "Пользователи",
    "Sign in": "Войти",
    "Sign out": "Выйти",
    "Name": "Имя",
    "Password": "Пароль",
    "Signed in as": "Вы вошли как",
    "Wrong name or password.": "Неверное имя или пароль.",
    "Check the spelling and the keyboard layout, then try again.": (
        "Проверьте написание и раскладку клавиатуры и попробуйте ещё раз."
    ),
    "Too many failed sign-ins.": "Слишком много неудачных попыток входа.",
    "Wait %s seconds, then try again.": "Подождите %s с и попробуйте снова.",
    "The sign-in form was out of date; it has been reloaded. Please sign in again.": (
        "Форма входа устарела и была обновлена. Войдите ещё раз."
    ),
    "Sign in to the console": "Вход в консоль",
    "Language": "Язык",
    "Something went wrong": "Что-то пошло не так",
    "Back to the dashboard": "Вернуться к сводке",
    "Not allowed": "Нет доступа",
    "Not found": "Не найдено",
    "Conflict": "Конфликт",
    "Invalid input": "Неверные данные",
    "Bad request": "Неверный запрос",
    "Forbidden": "Запрещено",
    "Unauthorized": "Требуется вход",
    "Skip to content": "Перейти к содержимому",
    "Main navigation": "Основная навигация",
    "role": "роль",
    "viewer": "наблюдатель",
    "operator": "оператор",
    "admin": "администратор",
    # sign-in through an OpenID provider (sms_sender.auth.oidc, auth.oidc_access)
    "Sign in with %s": "Войти через %s",
    "Signing in with a password is turned off here.": "Вход по паролю здесь отключён.",
    "The sign-in took too long or was started in another window, so it could not be trusted. "
    "Please start again.": (
        "Вход занял слишком много времени или был начат в другом окне, поэтому ему нельзя "
        "доверять. Начните заново."
    ),
    "%(provider)s could not be reached to sign you in. Try again in a minute.": (
        "Не удалось связаться с %(provider)s для входа. Попробуйте через минуту."
    ),
    "%(provider)s did not sign you in: %(reason)s.": "%(provider)s не выполнил вход: %(reason)s.",
    "%(provider)s did not accept the sign-in (%(reason)s). Please start again; if it keeps "
    "happening, an administrator should check SMS_SENDER_OIDC_CLIENT_ID and "
    "SMS_SENDER_OIDC_CLIENT_SECRET.": (
        "%(provider)s не принял вход (%(reason)s). Начните заново; если это повторяется, "
        "администратору стоит проверить SMS_SENDER_OIDC_CLIENT_ID и SMS_SENDER_OIDC_CLIENT_SECRET."
    ),
    "The answer from %(provider)s could not be verified (%(reason)s). Please start again; if it "
    "keeps happening, an administrator should check SMS_SENDER_OIDC_ISSUER and "
    "SMS_SENDER_OIDC_CLIENT_ID.": (
        "Ответ %(provider)s не прошёл проверку (%(reason)s). Начните заново; если это "
        "повторяется, администратору стоит проверить SMS_SENDER_OIDC_ISSUER и "
        "SMS_SENDER_OIDC_CLIENT_ID."
    ),
    "%(provider)s calls itself %(issuer)s, not SMS_SENDER_OIDC_ISSUER; an administrator should "
    "correct the setting.": (
        "%(provider)s называет себя %(issuer)s, а не SMS_SENDER_OIDC_ISSUER; администратору "
        "нужно исправить настройку."
    ),
    "%(email)s is in no group that gives access here (your groups: %(groups)s). Ask an "
    "administrator to add you to one.": (
        "%(email)s не входит ни в одну группу с доступом сюда (ваши группы: %(groups)s). "
        "Попросите администратора добавить вас в нужную."
    ),
    "%(provider)s did not tell us your e-mail address, so we cannot tell whether you may sign "
    "in. Ask an administrator to allow the email scope for this service.": (
        "%(provider)s не сообщил ваш адрес e-mail, поэтому нельзя понять, можно ли вам войти. "
        "Попросите администратора разрешить этому сервису scope email."
    ),
    "Your e-mail address %(email)s is not verified at %(provider)s. Verify it there, then sign "
    "in again.": (
        "Ваш адрес %(email)s не подтверждён в %(provider)s. Подтвердите его там и войдите снова."
    ),
    "%(email)s may not sign in here: the address is not among those admitted. Ask an "
    "administrator if you need access.": (
        "%(email)s не может войти сюда: этого адреса нет среди допущенных. Если вам нужен "
        "доступ, обратитесь к администратору."
    ),
    "A console user named %(name)s signs in with a password here; use that, or ask an "
    "administrator to remove it so that you can sign in through your provider.": (
        "Пользователь консоли %(name)s входит здесь по паролю; войдите так или попросите "
        "администратора удалить его, чтобы входить через провайдера."
    ),
    "Your console account %(name)s was disabled by an administrator.": (
        "Ваша учётная запись %(name)s отключена администратором."
    ),
    # the audit log page (sms_sender.admin.audit)
    "Audit log": "Журнал действий",
    "Who created, changed, paused, resumed, cancelled, resent, imported or deleted what, who "
    "signed in or failed to, and when. Newest first.": (
        "Кто что создал, изменил, приостановил, возобновил, отменил, отправил повторно, "
        "импортировал или удалил, кто входил или не смог войти, и когда. Сначала новые."
    ),
    "Who": "Кто",
    "Action": "Действие",
    "What": "Что",
    "Id": "Номер",
    "When": "Когда",
    "From": "Откуда",
    "Details": "Подробности",
    "Nothing recorded yet.": "Пока ничего не записано.",
    "No entries match these filters.": "Под эти условия ничего не подходит.",
    "created": "создано",
    "changed": "изменено",
    "deleted": "удалено",
    "paused": "приостановлено",
    "resumed": "возобновлено",
    "cancelled": "отменено",
    "resent": "отправлено повторно",
    "imported": "импортировано",
    "revoked": "отозвано",
    "disabled": "отключено",
    "signed_in": "вход",
    "sign_in_failed": "неудачный вход",
    "signed_out": "выход",
    "client": "клиент",
    "message": "сообщение",
    "mailing": "рассылка",
    "token": "токен",
    "user": "пользователь",
    # pages
    "%(length)s characters · %(encoding)s · %(segments)s SMS": (
        "%(length)s симв. · %(encoding)s · %(segments)s SMS"
    ),
    "11 digits starting with 7, e.g. 79161234567": "11 цифр, начиная с 7, например 79161234567",
    "3 digits; empty: digits 2-4 of the phone": "3 цифры; пусто: цифры 2-4 телефона",
    "Added": "Добавлен",
    "Any of the ticked codes; none ticked: any code.": (
        "Любой из отмеченных кодов; ничего не отмечено: любой код."
    ),
    "Any of the ticked tags; none ticked: any tag.": (
        "Любой из отмеченных тегов; ничего не отмечено: любой тег."
    ),
    "At least 10 characters. Tell it to the person in a safe way.": (
        "Не короче 10 символов. Передайте его человеку безопасным способом."
    ),
    "Attempts": "Попытки",
    "CSV file": "CSV-файл",
    "Cancel": "Отменить",
    "Cancel this mailing? Every message not yet sent is cancelled; this cannot be undone.": (
        "Отменить рассылку? Все ещё не отправленные сообщения будут отменены; это необратимо."
    ),
    "Change": "Изменить",
    "Changed": "Изменено",
    "Checking and saving the rows…": "Проверяем и сохраняем строки…",
    "Clear": "Сбросить",
    "Client": "Клиент",
    "Client deleted; their reports stay.": "Клиент удалён; его отчёты сохранены.",
    "Create mailing": "Создать рассылку",
    "Create token": "Создать токен",
    "Create user": "Создать пользователя",
    "Created": "Создан",
    "Delete": "Удалить",
    "Delete this client? Their unsent messages are cancelled; their reports stay.": (
        "Удалить клиента? Его неотправленные сообщения будут отменены, отчёты останутся."
    ),
    "Delete this mailing and all its reports? This cannot be undone.": (
        "Удалить рассылку и все её отчёты? Это необратимо."
    ),
    "Delete this message?": "Удалить сообщение?",
    "Disable": "Отключить",
    "Disable this user? Their sessions end at once.": (
        "Отключить пользователя? Его сеансы сразу закончатся."
    ),
    "Done / total": "Готово / всего",
    "Done:": "Выполнено:",
    "Each client's own local time; empty: any time. 22:00 to 06:00 wraps midnight.": (
        "Местное время каждого клиента; пусто: в любое время. С 22:00 до 06:00 — через полночь."
    ),
    "Enable": "Включить",
    "Encoding": "Кодировка",
    "End": "Окончание",
    "Error": "Ошибка",
    "Estimated finish": "Ожидаемое окончание",
    "Export CSV": "Выгрузить CSV",
    "Filter": "Фильтр",
    "First page": "Первая страница",
    "GSM-7: 160 characters in one SMS, 153 per part when longer; ^ { } [ ] ~ | € and the "
    "backslash count twice. Anything else (Cyrillic, emoji): UCS-2, 70 and 67.": (
        "GSM-7: 160 символов в одной SMS, 153 в каждой части длинного сообщения; ^ { } [ ] ~ | € "
        "и обратная косая черта считаются за два. Всё остальное (кириллица, эмодзи): UCS-2, "
        "70 и 67."
    ),
    "Header: phone,operator_code,tag,timezone. Only phone is required; good rows are kept, "
    "bad ones are listed by line.": (
        "Заголовок: phone,operator_code,tag,timezone. Обязателен только phone; верные строки "
        "сохраняются, неверные перечисляются с номером строки."
    ),
    "IANA name, e.g. Europe/Moscow; empty: the default": (
        "имя IANA, например Europe/Moscow; пусто: по умолчанию"
    ),
    "Import": "Загрузить",
    "Import clients from a CSV file": "Загрузить клиентов из CSV-файла",
    "Imported %(imported)s clients, %(failed)s rows rejected.": (
        "Загружено клиентов: %(imported)s, отклонено строк: %(failed)s."
    ),
    "Last sign-in": "Последний вход",
    "Length": "Длина",
    "Mailing": "Рассылка",
    "Mailing deleted.": "Рассылка удалена.",
    "Message": "Сообщение",
    "Message deleted.": "Сообщение удалено.",
    "Messages per minute, last hour": "Сообщений в минуту за последний час",
    "New client": "Новый клиент",
    "New mailing": "Новая рассылка",
    "New message": "Новое сообщение",
    "New token": "Новый токен",
    "New user": "Новый пользователь",
    "Next page": "Следующая страница",
    "Next scheduled": "Ближайшие запланированные",
    "No clients match.": "Подходящих клиентов нет.",
    "No mailing is running now.": "Сейчас ни одна рассылка не идёт.",
    "No mailings here yet.": "Рассылок пока нет.",
    "No messages yet.": "Сообщений пока нет.",
    "No reports match.": "Подходящих отчётов нет.",
    "No tokens yet.": "Токенов пока нет.",
    "May read the audit log": "Может читать журнал действий",
    "reads": "читает",
    "Nothing is scheduled.": "Ничего не запланировано.",
    "Operator code": "Код оператора",
    "Operator codes": "Коды операторов",
    "Pages": "Страницы",
    "Pause": "Приостановить",
    "Pause this mailing? Nothing more is sent until you resume it.": (
        "Приостановить рассылку? Ничего не будет отправлено, пока вы её не возобновите."
    ),
    "Paused by the service:": "Приостановлена сервисом:",
    "Phone": "Телефон",
    "Phone starts with": "Телефон начинается с",
    "Programs use a token in the header Authorization: Bearer <token> to call /api/v1.": (
        "Программы вызывают /api/v1 с токеном в заголовке Authorization: Bearer <token>."
    ),
    "Progress": "Ход",
    "Provider": "Провайдер",
    "Rate": "Скорость",
    "Reports": "Отчёты",
    "Reports appear when the mailing starts.": "Отчёты появятся, когда рассылка начнётся.",
    "Resend unknown": "Отправить неизвестные снова",
    "Resume": "Возобновить",
    "Resume it once the cause is fixed.": "Возобновите её, когда причина будет устранена.",
    "Resume this mailing?": "Возобновить рассылку?",
    "Revoke": "Отозвать",
    "Revoke this token? Programs using it stop working.": (
        "Отозвать токен? Программы, которые им пользуются, перестанут работать."
    ),
    "Role": "Роль",
    "Role of": "Роль пользователя",
    "Running now": "Идут сейчас",
    "SMS": "SMS",
    "Save": "Сохранить",
    "Save changes": "Сохранить изменения",
    "Saved.": "Сохранено.",
    "Search": "Найти",
    "Send the messages whose outcome is unknown again? Some clients may get them twice: do "
    "it only if the provider confirms they did not arrive.": (
        "Отправить снова сообщения с неизвестным исходом? Часть клиентов может получить их "
        "дважды: делайте это, только если провайдер подтвердил, что они не дошли."
    ),
    "Send window": "Окно отправки",
    "Sent": "Отправлено",
    "Sent in the last 7 days": "Отправлено за 7 дней",
    "Sent today": "Отправлено сегодня",
    "Show": "Показать",
    "Sign-in": "Вход",
    "Start": "Начало",
    "Start and end below are in this zone.": "Начало и окончание ниже указаны в этом поясе.",
    "State": "Состояние",
    "Status": "Статус",
    "Tag": "Тег",
    "Tags": "Теги",
    "Text": "Текст",
    "The directory is empty: add a client or import a CSV file.": (
        "Справочник пуст: добавьте клиента или загрузите CSV-файл."
    ),
    "There is no message yet:": "Сообщений ещё нет:",
    "Time zone": "Часовой пояс",
    "Times in": "Время указано в поясе",
    "Token created. Copy it now: it is not shown again.": (
        "Токен создан. Скопируйте его сейчас: больше он показан не будет."
    ),
    "Token revoked; the API refuses it within a second.": (
        "Токен отозван; API перестанет его принимать в течение секунды."
    ),
    "Uploading… %(percent)s%": "Загрузка… %(percent)s%",
    "User created.": "Пользователь создан.",
    "Write the first one.": "Напишите первое.",
    "a free label, e.g. vip; may be empty": "произвольная метка, например vip; может быть пустой",
    "active": "действует",
    "and more rows not listed": "и другие строки, не вошедшие в список",
    "any": "любой",
    "any time": "в любое время",
    "choose…": "выберите…",
    "client's local time": "по местному времени клиента",
    "estimated finish": "ожидаемое окончание",
    "every client": "все клиенты",
    "finish": "окончание",
    "from": "с",
    "line": "строка",
    "measuring…": "измеряем…",
    "msg/s": "сообщ./с",
    "no tags in the directory": "в справочнике нет тегов",
    "operator codes": "коды операторов",
    "tags": "теги",
    "the directory is empty": "справочник пуст",
    "to": "до",
    "mailings update every 2 seconds, totals and the chart every 30": (
        "рассылки обновляются каждые 2 секунды, итоги и график — каждые 30"
    ),
    "viewer reads; operator also changes clients, messages and mailings; admin also manages "
    "users and tokens.": (
        "наблюдатель читает; оператор также меняет клиентов, сообщения и рассылки; "
        "администратор также управляет пользователями и токенами."
    ),
    "while it runs: the end and the send window": "во время работы: окончание и окно отправки",
    "write one first": "сначала напишите его",
    "Purpose": "Назначение",
    "service": "сервисная",
    "advertising": "рекламная",
    "Advertising goes only to clients who gave consent and did not opt out; nobody who opted "
    "out gets anything.": (
        "Реклама уходит только клиентам, давшим согласие и не отказавшимся; отказавшиеся не "
        "получают ничего."
    ),
    "Recipients": "Получатели",
    "%(matching)s clients match · %(will_send)s will get it · skipped: %(no_consent)s without "
    "consent, %(opted_out)s opted out": (
        "Подходит клиентов: %(matching)s · получат: %(will_send)s · пропущено: без согласия "
        "%(no_consent)s, отказались %(opted_out)s"
    ),
    # statuses and states, shown through _(value)
    "pending": "ожидает",
    "sending": "отправляется",
    "sent": "отправлено",
    "delivered": "доставлено",
    "undelivered": "не доставлено",
    "failed": "ошибка",
    "expired": "истекло",
    "skipped": "пропущено",
    "unknown": "неизвестно",
    "scheduled": "запланирована",
    "running": "идёт",
    "finished": "завершена",
    "pause": "приостановлена",
    "resume": "возобновлена",
    "cancel": "отменена",
    "resend-unknown": "неизвестные отправлены снова",
    # consent on the client page
    "Consent": "Согласие",
    "Consent recorded.": "Согласие записано.",
    "Consent withdrawn.": "Согласие отозвано.",
    "The header may end with ,consent_at,consent_source: when the person agreed to advertising "
    "(ISO 8601 with an offset, e.g. 2026-11-30T18:00:00+03:00; not in the future) and where (a "
    "form, a shop, a call). Both or neither; empty cells: no consent.": (
        "Заголовок может заканчиваться на ,consent_at,consent_source: когда человек согласился "
        "на рекламу (ISO 8601 со смещением, например 2026-11-30T18:00:00+03:00; не в будущем) и "
        "где (форма, магазин, звонок). Оба или ни одного; пустые ячейки — согласия нет."
    ),
    "Withdraw consent": "Отозвать согласие",
    "Withdraw the consent of this client? Advertising mailings skip them from now on; service "
    "messages still go.": (
        "Отозвать согласие клиента? Рекламные рассылки с этого момента его пропускают; "
        "сервисные сообщения по-прежнему отправляются."
    ),
    "The client is opted out.": "Клиент отписан.",
    "Consent given": "Согласие дано",
    "no consent": "согласия нет",
    "Consent source": "Источник согласия",
    "Opted out": "Отписан",
    "no": "нет",
    "Opt-out source": "Источник отписки",
    "Agreed at": "Когда согласился",
    "Where or how": "Где или как",
    "the proof: a form, a shop, a call": "подтверждение: форма, магазин, звонок",
    "Record consent": "Записать согласие",
    "Opt this client out? Nothing more is sent to them, service messages included, until they "
    "give consent again.": (
        "Отписать клиента? Ему больше ничего не будет отправляться, включая сервисные "
        "сообщения, пока он снова не даст согласие."
    ),
    "how they asked to stop, e.g. a call to support": (
        "как клиент попросил прекратить, например звонок в поддержку"
    ),
    "Opt out": "Отписать",
    "Latest consent changes": "Последние изменения согласия",
    "What changed": "Что изменилось",
    "Effective": "Действует с",
    "Recorded": "Записано",
    "Source": "Источник",
    "By": "Кто",
    "No consent changes yet.": "Изменений согласия пока нет.",
    "consent_given": "согласие дано",
    "consent_withdrawn": "согласие отозвано",
    "opted_out": "отписан",
    "opt_out_cleared": "отписка снята",
}


# By code: the reasons of sms_sender/reasons.py (the same {slots}), then pydantic's error types.
ERROR_TEXTS: dict[str, str] = {
    # mailings
    "mailing_not_found": "рассылки {mailing_id} нет",
    "mailing_delete_active": (
        "рассылка {mailing_id} сейчас в состоянии «{status}»; сначала отмените её, потом удалите"
    ),
    "mailing_not_pausable": (
        "рассылка {mailing_id} в состоянии «{status}»; приостановить можно только идущую или "
        "запланированную рассылку"
    ),
    "mailing_not_resumable": (
        "рассылка {mailing_id} в состоянии «{status}»; возобновить можно только "
        "приостановленную рассылку"
    ),
    "mailing_not_cancellable": (
        "рассылка {mailing_id} в состоянии «{status}»; отменить можно только запланированную, "
        "идущую или приостановленную рассылку"
    ),
    "mailing_resume_ended": (
        "рассылка {mailing_id} закончилась в {end_at}; перенесите время окончания в будущее, "
        "потом возобновите её"
    ),
    "mailing_resend_cancelled": (
        "рассылка {mailing_id} отменена; из неё больше ничего не отправляется"
    ),
    "mailing_resend_ended": (
        "рассылка {mailing_id} закончилась в {end_at}; после окончания ничего не отправляется: "
        "сначала перенесите время окончания в будущее"
    ),
    "mailing_not_editable": (
        "рассылка {mailing_id} в состоянии «{status}»; её больше нельзя изменить"
    ),
    "mailing_field_frozen": (
        "{field} нельзя менять, пока рассылка {mailing_id} в состоянии «{status}»: её отчёты "
        "созданы по тем началу, сообщению и фильтру, с которыми она началась. Менять можно только "
        "время окончания и окно отправки; чтобы изменить {field}, отмените её и создайте новую"
    ),
    "end_before_start": "окончание ({end_at}) должно быть позже начала ({start_at})",
    "end_in_past": "окончание ({end_at}) должно быть в будущем (сейчас {now})",
    "mailing_message_missing": "сообщения {message_id} нет; сначала создайте его",
    "mailing_message_unsendable": (
        "сообщение {message_id} нельзя отправить через настроенного провайдера: {problem}"
    ),
    "not_an_integer": "нужно целое число",
    "filter_operator_code": "код оператора — 3 цифры, например 916; получено {got}",
    "time_of_day": "время — ЧЧ:ММ от 00:00 до 23:59, например 09:30; получено {got}",
    "send_window_empty": (
        "начало и конец окна отправки должны различаться; без окна рассылка идёт в любое время"
    ),
    "not_null": "не может быть пустым; не передавайте поле, чтобы оставить значение",
    # messages
    "message_not_found": "сообщения {message_id} нет",
    "message_in_use": (
        "сообщение {message_id} используется рассылкой; сначала удалите рассылку или оставьте его"
    ),
    "text_with_nul": "текст не должен содержать символ NUL (\\u0000)",
    # clients and consent
    "client_not_found": "клиента {client_id} нет",
    "phone_format": (
        "нужно 11 цифр, начиная с 7, например 79001234567 (без +, пробелов и дефисов); "
        "получено {got}"
    ),
    "operator_code_format": "нужно 3 цифры, например 900; получено {got}",
    "timezone_unknown": (
        "нужно название часового пояса IANA, например Europe/Moscow или UTC (с учётом регистра); "
        "получено {got}"
    ),
    "tag_control_character": "не должно содержать управляющих символов; получено {got}",
    "consent_without_source": "с временем согласия нужен его источник: где человек согласился",
    "source_without_consent": "источнику согласия нужно время согласия: когда человек согласился?",
    "client_field_not_null": (
        "{field} не может быть пустым; не передавайте поле, чтобы оставить его"
    ),
    "consent_in_future": (
        "время согласия ({consent_at}) в будущем (сейчас {now}); укажите, когда человек согласился"
    ),
    "phone_taken": (
        "телефон {phone} уже принадлежит клиенту {owner}; измените того клиента или выберите "
        "другой телефон"
    ),
    # datetimes
    "datetime_not_text": "дата и время — строка ISO 8601, например 2026-12-01T09:00:00+03:00",
    "datetime_out_of_range": "дата и время вне допустимого диапазона",
    # reports
    "report_not_found": "отчёта {report_id} нет",
    # who may do what
    "csrf_missing": (
        "токен безопасности формы (CSRF) отсутствует или устарел; обновите страницу и отправьте "
        "её снова"
    ),
    "role_too_low": (
        "вашей роли ({role}) это не разрешено; нужна {needed} — обратитесь к администратору"
    ),
    "signed_out": "сначала войдите в консоль; ваш сеанс закончился или не начинался",
    "token_exists": "токен с именем {name!r} уже есть; выберите другое имя",
    "token_not_found": "нет действующего токена с именем {name!r}",
    "token_name": "назовите токен (1–100 символов), например crm-sync",
    "user_name": "имя — от 1 до {max_length} печатных символов",
    "user_password": "пароль должен быть не короче {min_length} символов",
    "user_exists": "пользователь с именем {name!r} уже есть; выберите другое имя",
    "user_not_found": "пользователя {user_id} нет",
    "user_role": "выберите роль: viewer, operator или admin",
    "user_self_change": (
        "нельзя отключить себя или изменить свою роль; попросите другого администратора"
    ),
    # stop lists and inbound replies
    "stop_list_media_type": "стоп-лист нужно прислать как text/csv, а не {media_type}",
    "stop_list_no_media_type": "стоп-лист нужно прислать как text/csv; заголовка Content-Type нет",
    "stop_list_header": "первой строкой должен быть заголовок phone; получено {got}",
    "inbound_secret_missing": "пришлите общий секрет шлюза в заголовке {header}",
    "inbound_off": (
        "приём входящих выключен: задайте SMS_SENDER_INBOUND_SECRET и передайте шлюзу это "
        "значение в заголовке {header}"
    ),
    "inbound_secret_wrong": "заголовок {header} не совпадает с общим секретом",
    # console forms
    "import_file_missing": "выберите CSV-файл для импорта",
    "zone_unknown": "неизвестный часовой пояс {zone!r}; например Europe/Moscow",
    "consent_time_missing": "укажите дату и время, когда человек согласился",
    "date_and_time": "выберите дату и время",
    "consent_source_missing": "укажите, где или как человек согласился",
    "message_not_chosen": "выберите сообщение для отправки",
    "mailing_action_unknown": "неизвестное действие {action!r}; есть pause, resume и cancel",
    "user_action_unknown": "неизвестное действие {action!r}; есть disable, enable и role",
    # pydantic's own error types (their context's {slots})
    "missing": "обязательное поле",
    "string_type": "нужна строка",
    "string_too_short": "нужно не меньше {min_length} симв.",
    "string_too_long": "нужно не больше {max_length} симв.",
    "string_pattern_mismatch": "значение не подходит под шаблон {pattern}",
    "int_parsing": "нужно целое число",
    "int_type": "нужно целое число",
    "int_from_float": "нужно целое число, без дробной части",
    "greater_than": "нужно больше {gt}",
    "greater_than_equal": "нужно не меньше {ge}",
    "less_than": "нужно меньше {lt}",
    "less_than_equal": "нужно не больше {le}",
    "too_short": "нужно не меньше {min_length} элементов",
    "too_long": "нужно не больше {max_length} элементов",
    "list_type": "нужен список",
    "literal_error": "допустимые значения: {expected}",
    "enum": "допустимые значения: {expected}",
    "bool_parsing": "нужно да или нет",
    "datetime_parsing": "нужны дата и время",
    "datetime_from_date_parsing": "нужны дата и время",
    "datetime_type": "нужны дата и время",
    "timezone_aware": "у даты и времени нужен часовой пояс, например 2026-12-01T09:00:00+03:00",
    "extra_forbidden": "такого поля нет",
    "json_invalid": "это не JSON",
}

# ruff: noqa: RUF001 (Russian text: Cyrillic letters that look Latin are meant)
"""The console in English and Russian: chosen by a cookie, else the browser's Accept-Language.

Pages are written in English and every text passes through ``_()``; ``RUSSIAN`` maps it to its
translation. A text missing there shows in English (tests/admin/test_i18n.py lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from fastapi import Request

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
    "Who created, changed, paused, resumed, cancelled, resent, imported or deleted what, and "
    "when. Newest first.": (
        "Кто что создал, изменил, приостановил, возобновил, отменил, отправил повторно, "
        "импортировал или удалил, и когда. Сначала новые."
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
    "client": "клиент",
    "message": "сообщение",
    "mailing": "рассылка",
    "token": "токен",
    "user": "пользователь",
}

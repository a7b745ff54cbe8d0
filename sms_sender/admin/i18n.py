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
}

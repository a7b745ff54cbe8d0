"""structlog set-up: one JSON object per line (``LOG_FORMAT=json``) or readable console lines.

Context such as ``request_id`` or ``mailing_id`` is bound with structlog's contextvars, so every
line logged inside a request or a unit of engine work carries it without being passed around.

Our own lines go straight from structlog to the stream: a worker logs every provider exchange,
and the standard library's ``logging`` machinery (records, handlers, formatter) cost more than
the send itself (docs/benchmarks.md). A level below the configured one is a no-op method.
Library loggers (uvicorn, SQLAlchemy, Alembic) still use ``logging`` and are rendered by the
same processors into the same stream.

What a line may hold (docs/logging.md, docs/security.md): tracebacks never show local variables
(they would print bearer tokens and gateway credentials); every control character a client or
a gateway can slip into a value is shown escaped, so a line cannot move the cursor, recolour a
terminal or forge another line; phones and texts go through :func:`message_fields`, which
applies ``SMS_SENDER_LOG_MESSAGES``.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from functools import lru_cache
from typing import Any, TextIO

import orjson
import structlog

from sms_sender.config import LogFormat, LogMessages
from sms_sender.messages.encoding import sms_size

# C0, DEL and C1 controls, shown as Python writes them; everything printable passes untouched.
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
}
# A traceback keeps its own line breaks; the rest of it is escaped like any value.
_TRACEBACK_ESCAPES = {code: escape for code, escape in _CONTROL_ESCAPES.items() if code != 0x0A}
# orjson escapes C0 itself; DEL and C1 are valid raw in JSON but not on a terminal.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


class _Output:
    """Where and how every line goes; one lock so lines from threads never interleave.

    Read at each line, not baked into loggers cached on first use, so configuring again (as
    tests do) takes effect everywhere.
    """

    stream: TextIO | None = None  # None: whatever sys.stderr is when the line is written
    level = logging.INFO
    renderer: structlog.types.Processor
    messages = LogMessages.MASKED
    lock = threading.Lock()


def escape_controls(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) escaped, e.g. ESC as ``\\x1b``."""
    return text if text.isprintable() else text.translate(_CONTROL_ESCAPES)


def message_fields(phone: str, text: str, mode: LogMessages | None = None) -> dict[str, Any]:
    """What a line may say about an SMS, by ``SMS_SENDER_LOG_MESSAGES``; the one place that decides.

    ``full``: phone and text; ``masked`` (default): the phone's first 4 and last 4 digits
    (``7916***4567``) and the text's length and segment count; ``off``: nothing. ``mode``
    defaults to the one ``configure_logging`` was given.
    """
    mode = mode or _Output.messages
    if mode is LogMessages.FULL:
        return {"phone": phone, "text": text}
    if mode is LogMessages.OFF:
        return {}
    length, segments = _text_size(text)
    return {"phone": mask_phone(phone), "text_length": length, "segments": segments}


def mask_phone(phone: str) -> str:
    """``79161234567`` -> ``7916***4567``; anything too short to keep a middle is all stars."""
    if len(phone) < 9:
        return "*" * len(phone)
    return f"{phone[:4]}***{phone[-4:]}"


@lru_cache(maxsize=1024)
def _text_size(text: str) -> tuple[int, int]:
    # A mailing sends one text to many phones: it is measured once, not per send.
    size = sms_size(text)
    return size.length, size.segments


def _escape_values(event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Escape control characters in top-level strings (the console renderer prints them raw).

    Nested values need nothing: the renderer shows them with ``repr``, which escapes.
    """
    for key, value in event_dict.items():
        if type(value) is str and not value.isprintable():
            event_dict[key] = value.translate(_CONTROL_ESCAPES)
    return event_dict


def _traceback_without_locals(sio: TextIO, exc_info: Any) -> None:
    """The console renderer's traceback: plain, no local variables, controls escaped."""
    text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    sio.write("\n" + text.translate(_TRACEBACK_ESCAPES))


def _console_renderer() -> structlog.types.Processor:
    # structlog's default (rich) traceback prints every frame's locals: request headers,
    # bearer tokens, gateway credentials. Never that.
    render = structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=_traceback_without_locals
    )

    def console_lines(logger: Any, method_name: str, event_dict: structlog.types.EventDict) -> Any:
        return render(logger, method_name, _escape_values(event_dict))

    return console_lines


_Output.renderer = _console_renderer()


# The level of each logging method of a structlog logger.
_METHOD_LEVELS = {name.lower(): level for name, level in logging.getLevelNamesMapping().items()} | {
    "exception": logging.ERROR,
    "failure": logging.ERROR,
    "fatal": logging.CRITICAL,
    "msg": logging.INFO,
    "log": logging.INFO,
}


def _at_level(logger: Any, method_name: str, event_dict: structlog.types.EventDict) -> Any:
    """Drop a line below the configured level.

    Done here, read at each line, rather than by a filtering logger class: loggers are cached
    on first use, and a class baked in then would keep an earlier configuration's level (a test
    that ran the CLI at WARNING silenced every later test's INFO lines).
    """
    if _METHOD_LEVELS.get(method_name, logging.INFO) < _Output.level:
        raise structlog.DropEvent
    return event_dict


def _render(logger: Any, method_name: str, event_dict: structlog.types.EventDict) -> Any:
    return _Output.renderer(logger, method_name, event_dict)


class _LineLogger:
    """Writes rendered lines to the current output; ``name`` is the module that logs."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, line: str) -> None:
        stream = _Output.stream or sys.stderr
        with _Output.lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):  # closed or broken: a log line never breaks a send
                pass

    info = debug = warning = error = critical = exception = log = failure = fatal = msg


def _line_logger(*args: Any) -> _LineLogger:
    return _LineLogger(str(args[0]) if args else "")


class _LockedStreamHandler(logging.StreamHandler[TextIO]):
    """The standard library's lines, written under the same lock as ours."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = _Output.stream or sys.stderr
        with _Output.lock:
            super().emit(record)


def configure_logging(
    log_format: LogFormat = LogFormat.CONSOLE,
    level: str = "INFO",
    stream: TextIO | None = None,
    messages: LogMessages = LogMessages.MASKED,
) -> None:
    """Configure structlog and the standard library's root logger; ``stream``: stderr.

    ``messages`` is ``SMS_SENDER_LOG_MESSAGES``: how :func:`message_fields` shows phones and texts.
    """
    _Output.stream = stream
    _Output.messages = messages
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format is LogFormat.JSON:
        _Output.renderer = _json_lines
    else:
        _Output.renderer = _console_renderer()
    level_number = logging.getLevelNamesMapping()[level.upper()]
    _Output.level = level_number
    structlog.configure(
        processors=[_at_level, *shared, _render],
        logger_factory=_line_logger,
        # Debug lines are few (one per claimed batch); the level is checked by _at_level.
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=True,
    )
    _configure_library_logging(shared, level_number)


def _json_lines(logger: Any, method_name: str, event_dict: structlog.types.EventDict) -> str:
    event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    line = orjson.dumps(event_dict, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    return line if line.isprintable() else line.translate(_JSON_ESCAPES)


def _configure_library_logging(shared: list[structlog.types.Processor], level: int) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _render],
    )
    handler = _LockedStreamHandler(_Output.stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").propagate = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []

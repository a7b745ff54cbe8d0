"""structlog set-up: one JSON object per line (``LOG_FORMAT=json``) or readable console lines.

Context such as ``request_id`` or ``mailing_id`` is bound with structlog's contextvars, so every
line logged inside a request or a unit of engine work carries it without being passed around.

Our own lines go straight from structlog to the stream: a worker logs every provider exchange,
and the standard library's ``logging`` machinery (records, handlers, formatter) cost more than
the send itself (docs/benchmarks.md). A level below the configured one is a no-op method.
Library loggers (uvicorn, SQLAlchemy, Alembic) still use ``logging`` and are rendered by the
same processors into the same stream.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

import orjson
import structlog

from sms_sender.config import LogFormat


class _Output:
    """Where and how every line goes; one lock so lines from threads never interleave.

    Read at each line, not baked into loggers cached on first use, so configuring again (as
    tests do) takes effect everywhere.
    """

    stream: TextIO | None = None  # None: whatever sys.stderr is when the line is written
    renderer: structlog.types.Processor = structlog.dev.ConsoleRenderer(colors=False)
    lock = threading.Lock()


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
    log_format: LogFormat = LogFormat.CONSOLE, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger; ``stream``: stderr."""
    _Output.stream = stream
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format is LogFormat.JSON:
        _Output.renderer = _json_lines
    else:
        _Output.renderer = structlog.dev.ConsoleRenderer(colors=False)
    level_number = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, _render],
        logger_factory=_line_logger,
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        cache_logger_on_first_use=True,
    )
    _configure_library_logging(shared, level_number)


def _json_lines(logger: Any, method_name: str, event_dict: structlog.types.EventDict) -> str:
    event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


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

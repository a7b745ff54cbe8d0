"""Fixtures for the security regressions: captured logs in either format, the engine fixtures."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from sms_sender.config import LogFormat, LogMessages
from sms_sender.logging import configure_logging
from tests.dispatch.conftest import arrange, make_engine  # noqa: F401 (fixtures used here too)
from tests.providers.conftest import make_message  # noqa: F401

LogCapture = Callable[..., io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[LogCapture]:
    """Send every log line to a buffer, in the format and message mode asked for."""

    def capture(log_format: LogFormat, messages: LogMessages = LogMessages.MASKED) -> io.StringIO:
        structlog.reset_defaults()
        buffer = io.StringIO()
        configure_logging(log_format, "INFO", stream=buffer, messages=messages)
        return buffer

    yield capture
    configure_logging()  # back to the defaults: console format, masked messages, stderr
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.fixture(params=list(LogFormat))
def log_format(request: pytest.FixtureRequest) -> LogFormat:
    return LogFormat(request.param)

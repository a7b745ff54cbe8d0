"""What every request leaves behind (app.RequestContextMiddleware): its X-Request-ID, one log
line carrying that id, one count and one timing by method, route and status."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry import _logs, metrics, trace
from prometheus_client import REGISTRY

from sms_sender.config import LogFormat
from tests.security.conftest import LogCapture, capture_logs  # noqa: F401 (fixture)

PHONES = ("79161230001", "79161230002", "79161230001")  # the third is taken: 409


def _answered(status: int) -> float:
    labels = {"method": "POST", "route": "/clients", "status": str(status)}
    return REGISTRY.get_sample_value("sms_sender_http_requests_total", labels) or 0.0


def _timed() -> float:
    labels = {"method": "POST", "route": "/clients"}
    name = "sms_sender_http_request_duration_seconds_count"
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_request_is_counted_timed_and_logged_once_under_its_id(
    client: httpx.AsyncClient,
    capture_logs: LogCapture,  # noqa: F811 (the fixture imported above)
) -> None:
    logs = capture_logs(LogFormat.JSON)
    before = (_answered(201), _answered(409), _timed())

    responses = [await client.post("/api/v1/clients", json={"phone": p}) for p in PHONES]

    assert [response.status_code for response in responses] == [201, 201, 409]
    assert (_answered(201), _answered(409), _timed()) == (
        before[0] + 2,
        before[1] + 1,
        before[2] + 3,
    )
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    ids = [response.headers["x-request-id"] for response in responses]
    assert [
        (line["request_id"], line["method"], line["path"], line["status"])
        for line in lines
        if line["event"] == "request"
    ] == [
        (id_, "POST", "/api/v1/clients", code)
        for id_, code in zip(ids, [201, 201, 409], strict=True)
    ]
    assert [
        (line["request_id"], line["client_id"], line["action"])
        for line in lines
        if line["event"] == "audit"
    ] == [(ids[number], responses[number].json()["id"], "created") for number in (0, 1)]


async def test_a_request_never_asks_opentelemetry_for_a_provider(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's OpenTelemetry bridge is off: with it on, every request asked for three."""
    asked = []
    for module, getter in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        real = getattr(module, getter)
        monkeypatch.setattr(
            module, getter, lambda real=real, getter=getter: asked.append(getter) or real()
        )

    response = await client.post("/api/v1/clients", json={"phone": PHONES[0]})

    assert response.status_code == 201
    assert asked == []

"""The fake gateways as separate processes: what the kill -9 test and the benchmarks rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from sms_sender.providers import GatewaySessions, HttpProvider, Outcome
from tests.fakes.gateway import PROJECT_ROOT, GatewayProcess
from tests.providers.conftest import MessageFactory


async def test_gateway_process_records_accepted_ids_in_its_file(
    tmp_path: Path, sessions: GatewaySessions, make_message: MessageFactory
) -> None:
    record = tmp_path / "accepted.txt"
    with GatewayProcess(record, token="secret", latency_ms=5) as gateway:
        provider = HttpProvider(sessions.sends, url=gateway.url, token="secret", timeout=5.0)
        phones = [f"7900000{n:04d}" for n in range(1, 11)]
        results = await provider.send([make_message(phone=phone) for phone in phones])
        (repeat,) = await provider.send([make_message(phone=phones[0], report_id=1)])
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{gateway.url}/stats")).json()

        assert all(result.outcome is Outcome.ACCEPTED for result in results)
        assert repeat.outcome is Outcome.ACCEPTED
        assert sorted(gateway.accepted_ids()) == [1, 1, *range(2, 11)]
        assert stats == {
            "received": 11,
            "accepted": 11,
            "duplicates": 1,
            "duplicate_phones": 1,
            "by_phone": {phones[0]: 2, **dict.fromkeys(phones[1:], 1)},
        }


def test_smsaero_process_announces_its_url_and_stops_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.smsaero", "--port", "0", "--api-key", "k"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            ready = process.stdout.readline() if process.stdout else ""
            assert ready.startswith("smsaero listening on http://127.0.0.1:")
            url = ready.split(" on ", 1)[1].strip()
            answer = httpx.post(
                f"{url}/v2/sms/send",
                auth=("user@example.com", "k"),
                json={"number": "79001234567", "text": "Hi", "sign": "Shop"},
            )
        finally:
            process.terminate()

    assert process.returncode == 0
    assert answer.status_code == 200
    assert json.loads(answer.content)["data"]["number"] == "79001234567"

"""The mailing scripts/docker-smoke sends through the compose stack, and its verdict.

Run by scripts/docker-smoke with the host's virtualenv, once the stack is up::

    python scripts/docker-smoke.d/mailing.py --api http://127.0.0.1:PORT --token TOKEN \\
        --gateway http://127.0.0.1:PORT --workers ID,ID,ID [--clients 300]

It talks to the API only through the port compose published on 127.0.0.1: imports the clients
(CSV), creates a message and a mailing that starts at once, and once the fake gateway has
accepted about a third of them sends SIGKILL (``docker kill``) to the worker container that has
sent the most so far (counted from its log), so the one killed surely had work in hand. Then
it waits until every report is terminal (the dead worker's claims come back when its lease
runs out) and checks, against the gateway's own counts, that no phone and no report was
accepted twice and that every report the service calls sent was accepted. The last line of
its output is one JSON object with the figures; the exit status is 0 only if every check held.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# Statuses of a report the engine still has to settle; every other one is an outcome (DESIGN.md,
# "Report status"), `sent` included: the provider has it, only its delivery report may follow.
IN_FLIGHT = frozenset({"pending", "sending"})
SENT = ("sent", "delivered", "undelivered")
# The provider may or may not have it (a worker died mid-send); `interrupted` is its former name.
MAYBE_SENT = ("unknown", "interrupted")
KILL_AT_FRACTION = 1 / 3
WAIT_SECONDS = 180
# The line a worker logs for each message it hands to the provider (sms_sender/dispatch/sending.py).
SEND_LOG_EVENT = '"event":"provider exchange"'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the API's published base URL")
    parser.add_argument("--token", required=True)
    parser.add_argument("--gateway", required=True, help="the fake gateway's published base URL")
    parser.add_argument("--workers", required=True, help="worker container ids, comma-separated")
    parser.add_argument("--clients", type=int, default=300)
    args = parser.parse_args()

    api = httpx.Client(
        base_url=args.api, headers={"Authorization": f"Bearer {args.token}"}, timeout=30
    )
    gateway = httpx.Client(base_url=args.gateway, timeout=10)
    tag = f"smoke-{uuid.uuid4().hex[:8]}"
    phones = [f"7900{n:07d}" for n in range(1, args.clients + 1)]

    csv_body = "phone,operator_code,tag,timezone\n" + "".join(
        f"{phone},,{tag},UTC\n" for phone in phones
    )
    imported = _ok(
        api.post(
            "/api/v1/clients/import",
            content=csv_body.encode(),
            headers={"Content-Type": "text/csv"},
        )
    )
    _say(f"imported clients: {json.dumps(imported)[:200]}")
    message = _ok(api.post("/api/v1/messages", json={"text": "docker smoke test"}))
    now = datetime.now(UTC)
    mailing = _ok(
        api.post(
            "/api/v1/mailings",
            json={
                "start_at": (now - timedelta(minutes=1)).isoformat(),
                "end_at": (now + timedelta(minutes=30)).isoformat(),
                "message_id": message["id"],
                "filter": {"tags": [tag]},
            },
        )
    )
    mailing_id = mailing["id"]
    _say(f"mailing {mailing_id} created for the {args.clients} clients tagged {tag}")

    workers = args.workers.split(",")
    kill_at = int(args.clients * KILL_AT_FRACTION)
    accepted_at_kill = _wait_for_accepted(gateway, kill_at)
    sends_before_kill = {worker: _sends(worker) for worker in workers}
    killed = max(workers, key=lambda worker: sends_before_kill[worker])
    subprocess.run(["docker", "kill", "--signal", "KILL", killed], check=True, capture_output=True)
    _say(
        f"SIGKILL sent to worker {killed[:12]} after {accepted_at_kill} accepted; sends per "
        f"worker so far: {[sends_before_kill[worker] for worker in workers]}"
    )

    stats = _wait_until_terminal(api, mailing_id)
    gateway_stats = _ok(gateway.get("/stats"))
    gateway_stats.pop("by_phone", None)  # 300 lines' worth; duplicate_phones says what matters
    by_status: dict[str, int] = stats["by_status"]
    sent = sum(by_status.get(status, 0) for status in SENT)
    unknown = sum(by_status.get(status, 0) for status in MAYBE_SENT)
    problems = []
    if stats["total"] != args.clients:
        problems.append(f"{stats['total']} reports for {args.clients} clients")
    if not_terminal := {s: n for s, n in by_status.items() if s in IN_FLIGHT and n}:
        problems.append(f"reports not terminal: {not_terminal}")
    if gateway_stats["duplicate_phones"] or gateway_stats["duplicates"]:
        problems.append(
            f"accepted twice: {gateway_stats['duplicate_phones']} phones, "
            f"{gateway_stats['duplicates']} reports"
        )
    # Each sent report was accepted once; an unknown one may or may not have been.
    if sends_before_kill[killed] == 0:
        problems.append(f"no worker had logged a send (no {SEND_LOG_EVENT!r} line): is it renamed?")
    if not sent <= gateway_stats["accepted"] <= sent + unknown:
        problems.append(
            f"the gateway accepted {gateway_stats['accepted']}, the service says {sent} sent "
            f"and {unknown} unknown"
        )
    summary = {
        "ok": not problems,
        "problems": problems,
        "mailing_id": mailing_id,
        "clients": args.clients,
        "by_status": by_status,
        "accepted_at_kill": accepted_at_kill,
        "killed_worker_sends": sends_before_kill[killed],
        "sends_per_worker": [_sends(worker) for worker in workers],
        "gateway": gateway_stats,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0 if not problems else 1


def _wait_for_accepted(gateway: httpx.Client, count: int) -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        accepted = int(_ok(gateway.get("/stats"))["accepted"])
        if accepted >= count:
            return accepted
        time.sleep(0.05)
    raise SystemExit(f"mailing.py: the gateway accepted fewer than {count} in {WAIT_SECONDS} s")


def _wait_until_terminal(api: httpx.Client, mailing_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = _ok(api.get(f"/api/v1/mailings/{mailing_id}/stats"))
        waiting = sum(n for status, n in stats["by_status"].items() if status in IN_FLIGHT)
        if stats["total"] and not waiting:
            return stats
        time.sleep(0.5)
    _say(f"reports still not terminal after {WAIT_SECONDS} s: {stats}")
    return stats


def _sends(container: str) -> int:
    """How many messages a worker container has handed to the provider, from its log."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True)
    return (logs.stdout + logs.stderr).count(SEND_LOG_EVENT)


def _ok(response: httpx.Response) -> Any:
    if response.is_error:
        raise SystemExit(
            f"mailing.py: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


def _say(line: str) -> None:
    print(f"docker-smoke: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

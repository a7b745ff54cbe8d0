"""docs/metrics.md and the exported metrics agree, both ways."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import sms_sender.metrics  # noqa: F401 - declares every metric in the registry

DOC = Path(__file__).parents[1] / "docs" / "metrics.md"


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `(sms_sender_[a-z_]+)` \| (\w+) \|", DOC.read_text(), re.MULTILINE)
    return dict(rows)


def _exported() -> dict[str, str]:
    exported = {}
    for metric in REGISTRY.collect():
        if metric.name.startswith("sms_sender_"):
            name = metric.name + ("_total" if metric.type == "counter" else "")
            exported[name] = metric.type
    return exported


def test_every_exported_metric_is_documented_with_its_type() -> None:
    assert _documented() == _exported()

"""Reading what the demo's processes leave: a client's `--json` output, the byte counts in
a status message's detail, a folder's size on disk, a Prometheus metric."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def first_outcome(stdout: str, stderr: str) -> dict[str, Any]:
    """The first outcome a `peerdp client run --once --json` printed (its one advertisement)."""
    try:
        outcomes = json.loads(stdout)
    except ValueError:
        return {"result": "failed", "detail": (stderr or stdout).strip()[-200:]}
    return dict(outcomes[0]) if outcomes else {"result": "nothing to run"}


def bytes_by_source(detail: str) -> dict[str, int]:
    """`... (from BR01-DP:1234, HQ-DP01:56)` in a client's detail, as DP name -> bytes."""
    found = re.search(r"\(from ([^)]*)\)", detail)
    if not found:
        return {}
    pairs = (part.rsplit(":", 1) for part in found[1].split(", "))
    return {name.strip(): int(count) for name, count in pairs}


def bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def metric(exposition: str, name: str, **labels: str) -> float:
    """The value of metric `name` with exactly these `labels` (none: the unlabelled one) in
    Prometheus text, 0 if it is not there."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0

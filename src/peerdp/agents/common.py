"""What the branch DP and the client agent share: manifest checks, status, retry delays."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from peerdp.agents.mp_client import MPClient, MPError
from peerdp.content.manifest import Manifest, ManifestError
from peerdp.transfer.download import DownloadFailed, DownloadReport, SourceFailure

log = logging.getLogger("peerdp.agents")


class ManifestRefused(Exception):
    """A manifest that is not the one the signed policy names: never used."""


def checked_manifest(data: object, digest: str, package_id: str, version: int) -> Manifest:
    """`data` parsed as a manifest, if it is exactly the one the policy's digest names."""
    try:
        manifest = Manifest.from_json(data)
    except ManifestError as exc:
        raise ManifestRefused(f"manifest of {package_id} v{version} is not valid: {exc}") from exc
    if manifest.digest() != digest:
        raise ManifestRefused(
            f"manifest of {package_id} v{version} has digest {manifest.digest()}, "
            f"but the signed policy says {digest}"
        )
    if (manifest.package_id, manifest.source_version) != (package_id, version):
        raise ManifestRefused(
            f"manifest is for {manifest.package_id} v{manifest.source_version}, "
            f"not {package_id} v{version}"
        )
    return manifest


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def send_status(mp: MPClient, type_: str, **fields: Any) -> bool:
    """Send one status message; log (never raise) if the MP refuses it or cannot be reached."""
    message = {"type": type_, "at": rfc3339_now(), **fields}
    try:
        answer = mp.status(message)
    except MPError as exc:
        log.warning("status %s not sent: %s", type_, exc)
        return False
    for rejected in answer.get("rejected", []):
        log.warning("status %s refused by the MP: %s", type_, rejected.get("detail"))
        return False
    return True


def backoff_delay(attempt: int, base_s: float, cap_s: float = 600.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): doubling, capped."""
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))


def failure_summary(exc: DownloadFailed, limit: int = 6) -> str:
    """The download error in a few lines: the first line and the latest reason per source."""
    head = str(exc).splitlines()[0]
    latest: dict[str, SourceFailure] = {}
    for failure in exc.failures:
        latest[failure.source] = failure
    reasons = [str(f) for f in list(latest.values())[:limit]]
    return "; ".join([head, *reasons])


def transfer_summary(report: DownloadReport, total: int) -> str:
    """'N bytes over the network (from A: x, B: y), M reused of T'."""
    parts = [f"{name}: {n}" for name, n in report.bytes_by_source.items() if n]
    origin = f" (from {', '.join(parts)})" if parts else ""
    return (
        f"{report.network_bytes} bytes over the network{origin}, "
        f"{total - report.network_bytes} held already, {total} in total"
    )


def used_sources(report: DownloadReport) -> Sequence[str]:
    return [name for name, n in report.bytes_by_source.items() if n]

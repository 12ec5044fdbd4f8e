"""Helpers for tests of standard DPs: real `peerdp dp serve` processes and site set-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd, stop_process


@dataclass
class DPProcess:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)

    def stop(self) -> int:
        return stop_process(self.process)

    @property
    def dp_id(self) -> int:
        return int(json.loads((self.data_dir / "identity.json").read_text())["dp_id"])

    def metric(self, name: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert found, f"no metric {name}"
        return float(found[1])

    def object_path(self, sha256: str) -> Path:
        return self.data_dir / "content" / "objects" / sha256[:2] / sha256


def start_dp(site: SiteProcess, data_dir: Path, token: str | None = None, *extra: str) -> DPProcess:
    """Start `peerdp dp serve` and wait until it listens and answers /health."""
    args = ["dp", "serve", "--site", site.url, "--data-dir", str(data_dir), *extra]
    if token is not None:
        args += ["--token", token]
    process = subprocess.Popen(
        peerdp_cmd(*args), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=dict(os.environ)
    )
    assert process.stderr is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        lines.append(line)
        if not line and process.poll() is not None:
            raise RuntimeError(f"dp exited with {process.returncode}: {''.join(lines)}")
        if found := re.search(r"peerdp dp \S+ listening on (http://[^\s\"]+)", line):
            url = found[1]
    assert url, "the DP did not report its URL"
    dp = DPProcess(url, data_dir, process, lines)
    threading.Thread(target=_pump, args=(dp,), daemon=True).start()
    wait_for("the DP to answer /health", lambda: _healthy(url), every=0.05)
    return dp


def _pump(dp: DPProcess) -> None:
    assert dp.process.stderr is not None
    for line in dp.process.stderr:
        dp.log.append(line.decode(errors="replace"))


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Site:
    """Admin-API helpers over a running site server."""

    server: SiteProcess
    admin: httpx.Client

    @classmethod
    def of(cls, server: SiteProcess) -> Site:
        return cls(server, server.admin())

    def standard_dp(self, *, bits_enabled: bool = True, **fields: Any) -> tuple[int, str]:
        """A new standard DP and an enrolment token for it."""
        body = {"name": unique("std"), "kind": "standard", "bits_enabled": bits_enabled}
        dp = ok(self.admin.post("/distribution-points", json={**body, **fields}), 201)
        return dp["id"], self.token("standard_dp", dp["id"])

    def token(self, role: str, dp_id: int | None = None) -> str:
        body: dict[str, Any] = {"role": role, "max_uses": 1}
        if dp_id is not None:
            body["dp_id"] = dp_id
        return str(ok(self.admin.post("/enrolment-tokens", json=body), 201)["token"])

    def package(self, files: dict[str, bytes]) -> tuple[str, int]:
        package = ok(self.admin.post("/packages", json={"name": unique("pkg")}), 201)
        return package["id"], self.new_version(package["id"], files)

    def new_version(self, package_id: str, files: dict[str, bytes]) -> int:
        version = ok(
            self.admin.post(
                f"/packages/{package_id}/versions",
                content=tar_of(files),
                headers={"Content-Type": "application/x-tar"},
            ),
            201,
        )
        return int(version["source_version"])

    def add(self, package_id: str, dp_id: int) -> dict[str, Any]:
        row: dict[str, Any] = ok(
            self.admin.post(f"/packages/{package_id}/distribution-points", json={"dp_id": dp_id}),
            201,
        )
        return row

    def row(self, package_id: str, dp_id: int) -> dict[str, Any] | None:
        rows = ok(self.admin.get(f"/packages/{package_id}/distribution-points"))
        return next((r for r in rows if r["dp_id"] == dp_id), None)

    def wait_state(
        self, package_id: str, dp_id: int, states: Iterable[str], timeout: float = 30
    ) -> dict[str, Any]:
        wanted = set(states)

        def reached() -> dict[str, Any] | None:
            row = self.row(package_id, dp_id)
            return row if row is not None and row["state"] in wanted else None

        result: dict[str, Any] = wait_for(
            f"{package_id} on DP {dp_id} {wanted}", reached, timeout, every=0.05
        )
        return result

    def refresh(self, package_id: str, dp_id: int) -> dict[str, Any]:
        path = f"/packages/{package_id}/distribution-points/{dp_id}/refresh"
        row: dict[str, Any] = ok(self.admin.post(path))
        return row

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = ok(self.admin.get("/status-messages", params=filters))
        return rows

"""Managed machines for tests: their commands as real processes, a manifest of given
files, and a stand-in MP that records the status messages it is sent."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from peerdp.content.manifest import Manifest, ManifestFile
from tests.helpers.processes import peerdp_cmd, stop_process


def manifest_of(package_id: str, files: dict[str, bytes], version: int = 1) -> Manifest:
    entries = tuple(
        ManifestFile(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in sorted(files.items())
    )
    return Manifest(package_id, version, "2024-05-01T12:00:00Z", entries)


class RecordingMP:
    """Takes every status message (and refuses none), for in-process tests of a role; a
    branch DP's pull progress reports apart (the site logs no message for them)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.progress: list[dict[str, Any]] = []

    def status(self, *messages: dict[str, Any]) -> dict[str, Any]:
        for message in messages:
            kept = self.progress if message["type"] == "pull_progress" else self.messages
            kept.append(message)
        return {"accepted": len(messages), "rejected": []}


# -- agent processes ------------------------------------------------------------------


@dataclass
class AgentProcess:
    """A serving agent (branch or standard DP) and the lines it wrote to stderr."""

    process: subprocess.Popen[bytes]
    url: str
    lines: list[str]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.process, sig, timeout=20)


def start_agent(
    kind: str, args: list[str], timeout: float = 60, env: dict[str, str] | None = None
) -> AgentProcess:
    """Start `peerdp <kind> serve ARGS` (with `env` added to this process's environment)
    and wait for its "listening on" line."""
    process = subprocess.Popen(
        peerdp_cmd(kind, "serve", *args),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode(errors="replace")
        if not line and process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}: {''.join(lines)}")
        lines.append(line)
        if found := re.search(rf"peerdp {kind} \S+ listening on (https?://[^\s\"]+)", line):
            _pump(process, lines)
            return AgentProcess(process, found[1], lines)
    process.kill()
    raise RuntimeError(f"{kind} did not report its URL: " + "".join(lines))


def _pump(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    def run() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            lines.append(raw.decode(errors="replace"))
            if os.environ.get("PEERDP_TEST_VERBOSE"):
                print(lines[-1], end="")

    threading.Thread(target=run, daemon=True).start()


def run_client(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        peerdp_cmd("client", "run", *args), capture_output=True, text=True, timeout=timeout
    )

"""Starting and stopping the demo's real processes, leaving nothing behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Fleet:
    """Every process the demo started; `stop()` ends them all (SIGTERM, then SIGKILL)."""

    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    # One-shot commands running now (clients), so Ctrl-C need not wait for them; once
    # stopping, no new one starts.
    running: set[subprocess.Popen[str]] = field(default_factory=set)
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def peerdp(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "peerdp", *args]

    def start(self, name: str, args: Sequence[str], *, timeout: float = 60) -> Service:
        """Start a server and wait for its 'listening on URL' line."""
        return self.spawn(name, args)(timeout)

    def spawn(self, name: str, args: Sequence[str]) -> Callable[[float], Service]:
        """Start a server now; the returned call waits for its URL (so several boot at once)."""
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(
            self.peerdp(*args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **self.env},
            start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
        )
        self.services.append(Service(name, process, "", log))
        assert process.stderr is not None
        ready = _pump(process.stderr, log)

        def wait(timeout: float = 60) -> Service:
            url = _await_url(process, ready, log, timeout)
            service = next(s for s in self.services if s.process is process)
            service.url = url
            return service

        return wait

    def run(self, args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command to its end (a client's `--once` cycle)."""
        with self.lock:
            if self.stopping:
                raise RuntimeError("the demo is stopping")
            process = subprocess.Popen(
                self.peerdp(*args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
            self.running.add(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except BaseException:
            _end([process])
            raise
        finally:
            with self.lock:
                self.running.discard(process)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def stop(self) -> None:
        """End every process at once: SIGTERM to all, then SIGKILL to any still there after
        10 s (one at a time, a slow shutdown of each would add up)."""
        with self.lock:
            self.stopping = True
            clients = list(self.running)
        _end([*clients, *(service.process for service in reversed(self.services))])
        self.services.clear()


def _end(processes: Sequence[subprocess.Popen[bytes] | subprocess.Popen[str]]) -> None:
    alive = [process for process in processes if process.poll() is None]
    for process in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in alive:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class _Ready:
    event: threading.Event = field(default_factory=threading.Event)
    url: list[str] = field(default_factory=list)


def _pump(stream: IO[bytes], log: Path) -> _Ready:
    """Copy a server's stderr to its log; note the URL it announces."""
    ready = _Ready()

    def pump() -> None:
        with log.open("ab") as sink:
            for line in stream:
                sink.write(line)
                sink.flush()
                if not ready.url and (match := re.search(rb"listening on (http://[^\s\"]+)", line)):
                    ready.url.append(match[1].decode())
                    ready.event.set()
        ready.event.set()

    threading.Thread(target=pump, daemon=True).start()
    return ready


def _await_url(process: subprocess.Popen[bytes], ready: _Ready, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not ready.event.wait(0.1):
        if time.monotonic() > deadline:
            _end([process])
            raise RuntimeError(f"{log.stem} did not start in {timeout:.0f}s; see {log}")
    if not ready.url:
        raise RuntimeError(f"{log.stem} exited with {process.wait()}; see {log}")
    return ready.url[0]

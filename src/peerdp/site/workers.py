"""The site server's processes: one, or several workers on one listening socket.

`serve` runs the server in this process, or supervises N worker processes (spawned, each
running the same server on the socket bound here; the kernel spreads connections over
them). Either way, the lines saying where it listens are announced only once every
worker accepts connections, and a stop (SIGTERM, Ctrl-C; SIGHUP too for several workers)
answers every open policy long-poll at once and lets each worker finish its requests
within the grace time. A worker that dies while serving is replaced; one that dies while
starting stops them all with one line. Workers share their Prometheus metrics through a
directory of this run (`site/metrics.py`), removed when the server stops.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from peerdp.net import exit_zero_after_sigterm
from peerdp.site import metrics
from peerdp.site.notify import release_waiters

log = logging.getLogger(__name__)

GRACE_S = 5  # how long a stopping worker lets its requests finish before cancelling them
# How long a stopping worker may take past the grace time (its background services and
# database connections close) before it is killed.
KILL_AFTER_S = GRACE_S + 10
_spawn = multiprocessing.get_context("spawn")
multiprocessing.allow_connection_pickling()  # each worker gets the listening socket and a pipe


class WorkerFailed(Exception):
    """A worker process died before it accepted connections (the server stops)."""


class SiteServer(uvicorn.Server):
    """uvicorn's server, which says when it accepts connections, and answers open
    long-polls when told to stop (so a shutdown neither waits out their `wait` nor
    cancels them into 500s)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        release_waiters()
        super().handle_exit(sig, frame)


def serve(
    options: dict[str, Any], sock: socket.socket, workers: int, ready: Callable[[], None]
) -> None:
    """Serve on `sock` with `workers` processes until stopped; `ready()` once all accept
    connections. `options` are uvicorn's Config: the app (a factory each process calls),
    TLS, logging. Raises WorkerFailed when a worker cannot start."""
    options = {**options, "timeout_graceful_shutdown": GRACE_S}
    exit_zero_after_sigterm()
    if workers == 1:
        # Our own TCP socket, as is: uvicorn's `fd=` would wrap it as a UNIX socket, so
        # TCP_NODELAY is never set and every answer waits ~40 ms for a delayed ACK.
        SiteServer(uvicorn.Config(**options), ready).run(sockets=[sock])
        return
    with metrics.shared_directory() as directory:
        Supervisor(options, sock, workers, directory).run(ready)


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection  # the worker says "ready" on it; its end closing tells it we are gone
    ready: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid


class Supervisor:
    """Starts the workers, replaces one that dies, stops them all on a signal."""

    def __init__(
        self, options: dict[str, Any], sock: socket.socket, count: int, metrics_dir: str
    ) -> None:
        self.options = options
        self.sock = sock
        self.count = count
        self.metrics_dir = metrics_dir
        self.workers: list[_Worker] = []
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def run(self, ready: Callable[[], None]) -> None:
        ending = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in ending}
        # What this process holds now (the modules it imported to open the site) lives
        # until it exits: out of the collector's way, so the exit is not seconds of GC.
        gc.freeze()
        try:
            self.workers = [self._start() for _ in range(self.count)]
            self._watch(ready)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def _start(self) -> _Worker:
        ours, theirs = _spawn.Pipe()
        process = _spawn.Process(
            target=_worker, args=(self.options, self.sock, theirs), name="peerdp-site-worker"
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _watch(self, ready: Callable[[], None]) -> None:
        """Until a stop: note each worker's readiness (announcing once all are), and
        replace a worker that dies after it was ready."""
        announced = False
        while not self.stopping:
            starting = {w.conn: w for w in self.workers if not w.ready}
            running = {w.process.sentinel: w for w in self.workers}
            events = wait([*starting, *running, self._wake_r])
            for conn in (event for event in events if event in starting):
                with contextlib.suppress(EOFError, OSError):  # EOF: it died (seen below)
                    conn.recv()
                    starting[conn].ready = True
            for sentinel in (event for event in events if event in running):
                self._replace(running[sentinel])
            if not announced and not self.stopping and all(w.ready for w in self.workers):
                ready()
                announced = True

    def _replace(self, dead: _Worker) -> None:
        dead.process.join()
        dead.conn.close()
        metrics.forget_process(self.metrics_dir, dead.pid)
        if self.stopping:
            return
        code = dead.process.exitcode
        if not dead.ready:
            raise WorkerFailed(
                f"a site-server worker exited with code {code} while starting "
                "(its error is above); stopping"
            )
        log.warning("site-server worker %s exited with code %s; starting another", dead.pid, code)
        self.workers[self.workers.index(dead)] = self._start()

    def _stop_all(self) -> None:
        """SIGTERM to every worker; SIGKILL to any still there `KILL_AFTER_S` later."""
        # Once the workers close their copies, a new connection is refused at once rather
        # than left in the listening queue until this process exits and resets it.
        self.sock.close()
        alive = [w for w in self.workers if w.process.exitcode is None]
        for worker in alive:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + KILL_AFTER_S
        for worker in alive:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.warning("site-server worker %s did not stop in time: killed", worker.pid)
                worker.process.kill()
                worker.process.join()
        for worker in self.workers:
            worker.conn.close()


def _worker(options: dict[str, Any], sock: socket.socket, conn: Connection) -> None:
    """A worker process: serve on `sock` until SIGTERM or SIGINT (or its supervisor is
    gone), saying "ready" on `conn` once it accepts connections."""
    exit_zero_after_sigterm()  # after uvicorn's graceful stop, its re-raised signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ...ends the process normally
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor decides on a hang-up
    threading.Thread(target=_stop_with_supervisor, args=(conn,), daemon=True).start()
    SiteServer(uvicorn.Config(**options), lambda: conn.send(b"ready")).run(sockets=[sock])


def _stop_with_supervisor(conn: Connection) -> None:
    """Stop this worker if the supervisor goes away (killed), rather than serve on alone."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            conn.recv()
    os.kill(os.getpid(), signal.SIGTERM)

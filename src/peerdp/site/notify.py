"""Change notification: wakes long-polls and refreshes caches when the site changes.

A change is published inside the transaction that makes it. On PostgreSQL it is a
NOTIFY, delivered on commit to every site-server process sharing the database
(this one included, through its LISTEN connection). On SQLite, where one process
owns the database, an after-commit hook bumps the local generation directly.
"""

from __future__ import annotations

import asyncio
import threading

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "peerdp_changes"

# The buses of this process's running apps: a shutting-down server releases their waiters.
RUNNING: list[ChangeBus] = []


def release_waiters() -> None:
    """Answer every open long-poll now: the server is shutting down."""
    for bus in RUNNING:
        bus.stopping = True
        bus.bump()


class ChangeBus:
    def __init__(self, db_url: str, *, shared: bool) -> None:
        self.db_url = db_url
        self.shared = shared  # True on PostgreSQL: changes come back through LISTEN
        self.generation = 0
        # Bumped only when boundaries or DPs change: the location view is rebuilt then.
        self.topology_generation = 0
        self.stopping = False  # set at shutdown: long-polls answer at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Condition()
        RUNNING.append(self)
        if self.shared:
            ready = threading.Event()
            self._listener = threading.Thread(
                target=self._listen, args=(ready,), name="peerdp-listen", daemon=True
            )
            self._listener.start()
            ready.wait(10)

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)

    def publish(self, session: Session, *, topology: bool = False) -> None:
        """Announce, within `session`'s transaction, that the site changed.

        `topology` says boundaries or distribution points changed.
        """
        if self.shared:
            payload = "topology" if topology else "policy"
            session.execute(text(f"NOTIFY {CHANNEL}, '{payload}'"))
            return
        pending = session.info.get("peerdp_change")
        if pending is not None:
            pending["topology"] = pending["topology"] or topology
            return
        session.info["peerdp_change"] = {"topology": topology}

        def after_commit(_session: Session) -> None:
            change = _session.info.pop("peerdp_change", None)
            if change is not None:
                self.bump(topology=change["topology"])

        def after_rollback(_session: Session) -> None:
            _session.info.pop("peerdp_change", None)

        event.listen(session, "after_commit", after_commit, once=True)
        event.listen(session, "after_soft_rollback", after_rollback, once=True)

    def bump(self, *, topology: bool = False) -> None:
        """Record a change; safe to call from any thread."""
        with self._lock:
            self.generation += 1
            if topology:
                self.topology_generation += 1
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._wake()))

    async def _wake(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, after_generation: int, timeout: float) -> int:
        """Wait until the generation passes `after_generation` or `timeout` runs out."""
        assert self._changed is not None
        changed = self._changed
        try:
            async with changed:
                await asyncio.wait_for(
                    changed.wait_for(lambda: self.generation > after_generation), timeout
                )
        except TimeoutError:
            pass
        return self.generation

    def _listen(self, ready: threading.Event) -> None:
        url = make_url(self.db_url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    # Anything may have changed while we were not listening.
                    self.bump(topology=True)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.bump(topology=note.payload == "topology")
            except psycopg.Error:
                ready.set()
                self._stop.wait(1.0)

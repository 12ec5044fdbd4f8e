"""Change notification: wakes long-polls and refreshes caches when the site changes.

A change is published inside the transaction that makes it. On PostgreSQL it is a
NOTIFY, delivered on commit to every site-server process sharing the database
(this one included, through its LISTEN connection). On SQLite, where one process
owns the database, an after-commit hook bumps the local generation directly.
"""

from __future__ import annotations

import asyncio
import re
import threading

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction

CHANNEL = "peerdp_changes"
# What a change touches, each kind with its own generation, so a cache is dropped only by
# the changes that concern it: "policy" (anything else: packages, advertisements, DP
# lists and states), "topology" (boundaries, DPs), "members" (collection membership),
# "machines" (a machine identity deleted). Every change moves the overall generation.
KINDS = ("policy", "topology", "members", "machines")
# Session.info keys: the kinds published in the open transaction; the hooks are in place.
_PENDING = "peerdp_change"
_HOOKED = "peerdp_change_hooks"

# The buses of this process's running apps: a shutting-down server releases their waiters.
RUNNING: list[ChangeBus] = []


def channel_for(schema: str | None) -> str:
    """The NOTIFY channel of the site whose tables are in `schema`: sites sharing one
    PostgreSQL database in separate schemas must not drop each other's caches."""
    return CHANNEL + "_" + re.sub(r"[^a-z0-9_]", "_", (schema or "public").lower())[:40]


def release_waiters() -> None:
    """Answer every open long-poll now: the server is shutting down."""
    for bus in RUNNING:
        bus.stopping = True
        bus.bump()


class ChangeBus:
    def __init__(self, db_url: str, *, shared: bool) -> None:
        self.db_url = db_url
        self.shared = shared  # True on PostgreSQL: changes come back through LISTEN
        self.generation = 0  # every change
        self._generations = dict.fromkeys(KINDS, 0)
        self.stopping = False  # set at shutdown: long-polls answer at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()
        self._channel: str | None = None  # PostgreSQL: this site's channel, once known

    def _channel_of(self, session: Session) -> str:
        self._channel = channel_for(session.execute(text("SELECT current_schema()")).scalar())
        return self._channel

    @property
    def topology_generation(self) -> int:
        """Bumped only when boundaries or DPs change: the location view is rebuilt then."""
        return self._generations["topology"]

    def generation_of(self, kind: str) -> int:
        return self._generations[kind]

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

    def publish(
        self,
        session: Session,
        *,
        policy: bool = False,
        topology: bool = False,
        members: bool = False,
        machines: bool = False,
    ) -> None:
        """Announce, within `session`'s transaction, that the site changed.

        `topology`: boundaries or distribution points changed; `members`: a collection's
        membership; `machines`: a machine identity was deleted (its credential revoked);
        `policy` (also when nothing is said): anything else, e.g. advertisements.
        """
        flags = {"policy": policy, "topology": topology, "members": members, "machines": machines}
        kinds = {kind for kind, on in flags.items() if on} or {"policy"}
        if self.shared:  # every process, this one too, hears it through LISTEN
            channel = self._channel or self._channel_of(session)
            session.execute(text(f"NOTIFY {channel}, '{','.join(sorted(kinds))}'"))
        # This process also learns of it as the transaction commits: its next request must
        # see the change, not race the notification.
        pending = session.info.get(_PENDING)
        if pending is not None:
            pending |= kinds
            return
        session.info[_PENDING] = kinds
        if not session.info.get(_HOOKED):  # once per session, however many transactions
            session.info[_HOOKED] = True
            event.listen(session, "after_commit", self._committed)
            event.listen(session, "after_soft_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        change = session.info.pop(_PENDING, None)
        if change is not None:
            self.bump(change)

    def _rolled_back(self, session: Session, rolled_back: SessionTransaction) -> None:
        # A savepoint's rollback leaves the outer transaction, and its change, alive.
        if not rolled_back.nested and rolled_back.parent is None:
            session.info.pop(_PENDING, None)

    def bump(self, kinds: set[str] | frozenset[str] = frozenset()) -> None:
        """Record a change (of `kinds`); safe to call from any thread."""
        with self._lock:
            self.generation += 1
            for kind in kinds:
                self._generations[kind] += 1
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
                    schema = conn.execute("SELECT current_schema()").fetchone()
                    conn.execute(f"LISTEN {channel_for(schema[0] if schema else None)}")
                    ready.set()
                    # Anything may have changed while we were not listening.
                    self.bump(frozenset(KINDS))
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.bump(set(note.payload.split(",")) & set(KINDS))
            except psycopg.Error:
                ready.set()
                self._stop.wait(1.0)

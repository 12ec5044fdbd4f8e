"""Change notification: wakes long-polls and refreshes caches when the site changes.

A change is published inside the transaction that makes it. The process making it learns
of it from an after-commit hook, so its next request sees the change. On PostgreSQL it is
also a NOTIFY, delivered on commit to every site-server process sharing the database; the
NOTIFY names the bus that sent it, so that bus does not count its own change twice (a
second count would make the machines woken by the first compute their policy again).

A change also names the policy inputs it touched (`concerns`, see site/mp/policy_inputs.py):
the bus remembers, per input, the last change that touched it, so "has anything this
policy was computed from changed since?" is a few dictionary reads, and it tells its
listeners (the held long-polls) which inputs changed, so only those concerned wake.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction

CHANNEL = "peerdp_changes"
# What a change touches, each kind with its own generation, so a cache is dropped only by
# the changes that concern it: "policy" (anything else: packages, advertisements, DP
# lists and states), "topology" (boundaries, DPs), "members" (collection membership),
# "machines" (a machine identity deleted). Every change moves the overall generation but
# two: "deployments" (a client's deployment state moved, site/deployment_status.py) and
# "messages" (status messages written, site/status.py) move only their own, for the
# console's live pages; nothing else needs waking for them.
DEPLOYMENTS = "deployments"
MESSAGES = "messages"
KINDS = ("policy", "topology", "members", "machines", DEPLOYMENTS, MESSAGES)
_QUIET = frozenset({DEPLOYMENTS, MESSAGES})
# Session.info keys: the kinds and inputs published in the open transaction; the hooks.
_PENDING = "peerdp_change"
_CONCERNS = "peerdp_change_concerns"
_HOOKED = "peerdp_change_hooks"

# The buses of this process's running apps: a shutting-down server releases their waiters.
RUNNING: list[ChangeBus] = []
# A change that cannot name what it touched touches every policy.
EVERYTHING = "*"
# PostgreSQL's NOTIFY payload limit is 8000 bytes: a longer list of inputs is sent as
# EVERYTHING (waking more machines than needed, never fewer).
_MAX_PAYLOAD = 7900


def channel_for(schema: str | None) -> str:
    """The NOTIFY channel of the site whose tables are in `schema`: sites sharing one
    PostgreSQL database in separate schemas must not drop each other's caches."""
    return CHANNEL + "_" + re.sub(r"[^a-z0-9_]", "_", (schema or "public").lower())[:40]


def release_waiters() -> None:
    """Answer every open long-poll now: the server is shutting down."""
    for bus in RUNNING:
        bus.stopping = True
        bus.bump(concerns=())  # nothing changed: the listeners see `stopping`


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
        # Per policy input, the generation of the last change that touched it.
        self._touched: dict[str, int] = {}
        self._everything = 0  # the generation of the last change that touched every input
        # Called on the event loop with the inputs each change touched.
        self.listeners: list[Callable[[frozenset[str]], None]] = []
        self._waking: asyncio.Future[None] | None = None
        # Names this bus in its NOTIFY payloads: its own changes, heard back, are skipped.
        self.origin = uuid.uuid4().hex

    def _channel_of(self, session: Session) -> str:
        self._channel = channel_for(session.execute(text("SELECT current_schema()")).scalar())
        return self._channel

    @property
    def topology_generation(self) -> int:
        """Bumped only when boundaries or DPs change: the location view is rebuilt then."""
        return self._generations["topology"]

    def generation_of(self, kind: str) -> int:
        return self._generations[kind]

    def changed_since(self, generation: int, inputs: Iterable[str]) -> bool:
        """Whether a change after `generation` touched one of `inputs` (no I/O, no lock:
        each read is of one int, and a generation only grows)."""
        if self._everything > generation:
            return True
        touched = self._touched
        return any(touched.get(key, 0) > generation for key in inputs)

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
        deployments: bool = False,
        messages: bool = False,
        concerns: Collection[str] | None = None,
    ) -> None:
        """Announce, within `session`'s transaction, that the site changed.

        `topology`: boundaries or distribution points changed; `members`: a collection's
        membership; `machines`: a machine identity was deleted (its credential revoked);
        `deployments` (with `concerns=()`): clients' deployment states moved; `messages`
        (with `concerns=()`): status messages were written; `policy`
        (also when nothing is said): anything else, e.g. advertisements.
        `concerns`: the policy inputs the change touched (site/mp/policy_inputs.py), so
        only the machines whose policy reads one of them recompute it; None (not said)
        touches every policy, an empty collection none.
        """
        flags = {
            "policy": policy,
            "topology": topology,
            "members": members,
            "machines": machines,
            DEPLOYMENTS: deployments,
            MESSAGES: messages,
        }
        kinds = {kind for kind, on in flags.items() if on} or {"policy"}
        touched = {EVERYTHING} if concerns is None else set(concerns)
        pending = session.info.get(_PENDING)
        # Said already in this transaction (a status message each): no second NOTIFY.
        said = pending is not None and kinds <= pending and touched <= session.info[_CONCERNS]
        if self.shared and not said:  # every process, this one too, hears it through LISTEN
            channel = self._channel or self._channel_of(session)
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": channel, "payload": _payload(kinds, touched, self.origin)},
            )
        # This process also learns of it as the transaction commits: its next request must
        # see the change, not race the notification.
        if pending is not None:
            pending |= kinds
            session.info[_CONCERNS] |= touched
            return
        session.info[_PENDING] = kinds
        session.info[_CONCERNS] = touched
        if not session.info.get(_HOOKED):  # once per session, however many transactions
            session.info[_HOOKED] = True
            event.listen(session, "after_commit", self._committed)
            event.listen(session, "after_soft_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        change = session.info.pop(_PENDING, None)
        touched = session.info.pop(_CONCERNS, set())
        if change is not None:
            self.bump(change, touched)

    def _rolled_back(self, session: Session, rolled_back: SessionTransaction) -> None:
        # A savepoint's rollback leaves the outer transaction, and its change, alive.
        if not rolled_back.nested and rolled_back.parent is None:
            session.info.pop(_PENDING, None)
            session.info.pop(_CONCERNS, None)

    def bump(
        self,
        kinds: Collection[str] = frozenset(),
        concerns: Collection[str] = frozenset({EVERYTHING}),
    ) -> None:
        """Record a change (of `kinds`, touching the policy inputs `concerns`); safe to
        call from any thread."""
        touched = frozenset(concerns)
        with self._lock:
            if not kinds or not set(kinds) <= _QUIET:
                self.generation += 1
            for kind in kinds:
                self._generations[kind] += 1
            for key in touched:
                self._touched[key] = self.generation
            if EVERYTHING in touched:
                self._everything = self.generation
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed_on_loop, touched)

    def _changed_on_loop(self, touched: frozenset[str]) -> None:
        self._waking = asyncio.ensure_future(self._wake())  # kept: a task must be held
        if touched or self.stopping:
            for listener in self.listeners:
                listener(touched)

    async def _wake(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    @property
    def seen(self) -> int:
        """Every change, deployment states' included: what the console's live pages follow."""
        return self.generation + self._generations[DEPLOYMENTS]

    async def wait(
        self,
        after_generation: int,
        timeout: float,
        *,
        deployments: bool = False,
        messages: bool = False,
    ) -> int:
        """Wait until the generation (`seen` if `deployments`, the status messages' if
        `messages`) passes `after_generation` or `timeout` runs out; the generation then."""
        assert self._changed is not None
        changed = self._changed

        def current() -> int:
            if messages:
                return self._generations[MESSAGES]
            return self.seen if deployments else self.generation

        try:
            async with changed:
                await asyncio.wait_for(
                    changed.wait_for(lambda: current() > after_generation), timeout
                )
        except TimeoutError:
            pass
        return current()

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
                            origin, kinds, concerns = _parse(note.payload)
                            if origin != self.origin:  # its own was counted at commit
                                self.bump(kinds, concerns)
            except psycopg.Error:
                ready.set()
                self._stop.wait(1.0)


def _payload(kinds: Collection[str], concerns: Collection[str], origin: str) -> str:
    """A change as NOTIFY carries it: its kinds and the bus that sent it, then one line
    per input it touched."""
    head = ",".join(sorted(kinds)) + " " + origin + "\n"
    payload = head + "\n".join(sorted(concerns))
    return payload if len(payload.encode()) <= _MAX_PAYLOAD else head + EVERYTHING


def _parse(payload: str) -> tuple[str, set[str], set[str]]:
    """The sender, kinds and inputs of a change heard through LISTEN (a payload of an
    older release, kinds alone and no sender, touches everything)."""
    head, separator, rest = payload.partition("\n")
    names, _, origin = head.partition(" ")
    kinds = set(names.split(",")) & set(KINDS)
    concerns = set(rest.split("\n")) - {""} if separator else {EVERYTHING}
    return origin, kinds, concerns

"""Batched writing of the MP's high-volume records: content-location answer messages, and
when each machine was last in contact (and where each client was last seen).

One transaction per batch instead of one per request keeps the MP fast. Messages that
record a state change (on-demand triggered or delayed, a DP's report) are never batched:
they are written in the transaction that makes the change.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from peerdp.site import deployment_status
from peerdp.site.notify import ChangeBus
from peerdp.store.db import Database
from peerdp.store.models import Client, DistributionPoint, StatusMessage, utcnow

T = TypeVar("T")


class Batcher(Generic[T]):
    """Items collected from any thread, written by `write` in one transaction per batch
    on a thread of its own (every `interval_s`, or sooner when `max_batch` are waiting)."""

    def __init__(
        self,
        db: Database,
        write: Callable[[Session, list[T]], None],
        *,
        name: str,
        interval_s: float = 0.1,
        max_batch: int = 1000,
    ) -> None:
        self.db = db
        self._write = write
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._pending: list[T] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, item: T) -> None:
        with self._lock:
            self._pending.append(item)
            full = len(self._pending) >= self.max_batch
        if full:
            self._wake.set()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with self.db.transaction() as s:
                self._write(s, batch)
        except Exception:
            with self._lock:  # keep them for the next try
                self._pending[:0] = batch
            raise
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep the writer alive; the batch is kept and retried
                self._stop.wait(self.interval_s)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


# What a content-location answer tells its deployment's state besides its message.
_DEPLOYMENT_ONLY = ("source_dp_id", "boundary_id")


def _insert_messages(s: Session, rows: list[dict[str, Any]]) -> bool:
    """Write the messages and the deployment states they move; whether any moved."""
    messages = [{k: v for k, v in row.items() if k not in _DEPLOYMENT_ONLY} for row in rows]
    s.execute(insert(StatusMessage), messages)
    reports = (deployment_status.report_of(row) for row in rows)
    return deployment_status.upsert(s, [report for report in reports if report is not None])


class StatusBatcher(Batcher[dict[str, Any]]):
    """Status messages written in batches; those that report a deployment's state (the
    MP's content-location answers) move it in the same transaction."""

    def __init__(self, db: Database, changes: ChangeBus | None = None, **options: Any) -> None:
        def write(s: Session, rows: list[dict[str, Any]]) -> None:
            moved = _insert_messages(s, rows)
            if changes is not None:
                # The console's live pages follow messages and deployment states (no
                # policy moves): one change a batch.
                changes.publish(s, deployments=moved, messages=True, concerns=())

        super().__init__(db, write, name="peerdp-status", **options)

    def message(self, **fields: Any) -> None:
        now = utcnow()
        self.add({"at": now, "received_at": now, "severity": "info", "detail": "", **fields})


# Who was seen: ("client", its name) or ("dp", its DP id).
Who = tuple[str, str | int]
# Where a client says it is: its reported addresses, its AD site, and the address its
# request came from (as the MP saw the connection).
Place = tuple[tuple[str, ...], str | None, str | None]
# Who, where (None: contact alone, nothing reported), when.
Sighting = tuple[Who, Place | None, datetime]


def client(name: str) -> Who:
    return ("client", name)


def dp(dp_id: int) -> Who:
    return ("dp", dp_id)


_CLIENT_PLACE = (
    update(Client)
    .where(Client.name == bindparam("b_name"))
    .values(
        ip_addresses=bindparam("b_addresses"),
        ad_site=bindparam("b_ad_site"),
        peer_address=bindparam("b_peer"),
        last_seen=bindparam("b_at"),
    )
)
_CLIENT_CONTACT = (
    update(Client).where(Client.name == bindparam("b_name")).values(last_seen=bindparam("b_at"))
)
_DP_CONTACT = (
    update(DistributionPoint)
    .where(DistributionPoint.id == bindparam("b_id"))
    .values(last_seen=bindparam("b_at"))
)


def _write_sightings(s: Session, sightings: list[Sighting]) -> None:
    """Each machine's row once per batch: its latest contact, and its latest place."""
    latest: dict[Who, datetime] = {}
    places: dict[Who, Place] = {}
    for who, place, at in sightings:
        latest[who] = at
        if place is not None:
            places[who] = place
    placed, contacted, dps = [], [], []
    # In key order: site-server processes sharing a database lock rows in the same order.
    for (kind, key), at in sorted(latest.items()):
        place = places.get((kind, key))
        if kind == "dp":
            dps.append({"b_id": key, "b_at": at})
        elif place is None:
            contacted.append({"b_name": key, "b_at": at})
        else:
            addresses, ad_site, peer = place
            placed.append(
                {
                    "b_name": key,
                    "b_addresses": list(addresses),
                    "b_ad_site": ad_site,
                    "b_peer": peer,
                    "b_at": at,
                }
            )
    connection = s.connection()  # Core: one executemany each, no ORM bulk-by-key rules
    for statement, rows in (
        (_CLIENT_PLACE, placed),
        (_CLIENT_CONTACT, contacted),
        (_DP_CONTACT, dps),
    ):
        if rows:
            connection.execute(statement, rows)


class Sightings(Batcher[Sighting]):
    """When every machine (client, standard or branch DP) was last in contact with the MP,
    and where each client was last seen, written to its row in batches.

    Contact is any authenticated MP request (policy, status, content location, ping, a
    DP's announcement); a machine holding a policy long-poll is in contact for as long as
    it waits. Where a client is: the addresses and AD site it reports when it asks for
    content, and the address its request came from. `explain` and the client list then
    show where a machine is now (a laptop moves between branches), not where it enrolled.

    A machine's row is written at its first contact seen by this process, at once when
    its place changes, and otherwise at most once every `refresh_s`: the last-contact
    time an administrator reads is that fresh, and a busy MP writes no row per request.
    """

    def __init__(self, db: Database, *, refresh_s: float = 60.0, interval_s: float = 1.0) -> None:
        self.refresh_s = refresh_s
        # who -> (the place last written, when it was last written: monotonic)
        self._written: dict[Who, tuple[Place | None, float]] = {}
        self._held: dict[Who, int] = {}  # machines waiting in a policy long-poll
        self._held_lock = threading.Lock()
        self._next_sweep = 0.0
        super().__init__(db, _write_sightings, name="peerdp-sightings", interval_s=interval_s)

    def contact(self, who: Who) -> None:
        """`who` called the MP now (cheap: called on every request, on the event loop)."""
        now = time.monotonic()
        last = self._written.get(who)
        if last is not None and now - last[1] < self.refresh_s:
            return
        self._note(who, None if last is None else last[0], None, now)

    def seen(
        self, name: str, addresses: tuple[str, ...], ad_site: str | None, peer: str | None = None
    ) -> None:
        """Client `name` asked for content, reporting `addresses` and `ad_site`, from `peer`."""
        who, place, now = client(name), (addresses, ad_site, peer), time.monotonic()
        last = self._written.get(who)
        if last is not None and last[0] == place and now - last[1] < self.refresh_s:
            return
        self._note(who, place, place, now)

    def _note(self, who: Who, known: Place | None, place: Place | None, now: float) -> None:
        if len(self._written) > 500_000:
            self._written.clear()
        self._written[who] = (known, now)
        self.add((who, place, utcnow()))

    @contextlib.contextmanager
    def holding(self, who: Who) -> Iterator[None]:
        """`who` waits in a long-poll meanwhile: in contact from its arrival to its answer."""
        self.contact(who)
        with self._held_lock:
            self._held[who] = self._held.get(who, 0) + 1
        try:
            yield
        finally:
            with self._held_lock:
                left = self._held.pop(who) - 1
                if left:
                    self._held[who] = left
            self.contact(who)

    def flush(self) -> int:
        self._contact_held()
        return super().flush()

    def _contact_held(self) -> None:
        """Move on the last contact of the machines waiting in a long-poll (every
        `refresh_s`, looked at four times as often)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.refresh_s / 4
        with self._held_lock:
            held = list(self._held)
        for who in held:
            self.contact(who)

"""Machine policy, versioned and signed, computed only when one of its inputs changed.

A machine's policy version grows only when its content changes (a digest is kept per
machine), so `since=N` long-polls wake exactly when something changed. What the site knows
of each machine's policy is kept in memory (`PolicyState`: version, digest, body and the
inputs it was read from, site/mp/policy_inputs.py) and is current until the change bus says
one of those inputs changed. So:

- a quiet poll, a poll that times out and a "has my policy changed" check read memory
  only: no query, no write lock, no signing;
- a collection's advertisements are read once per change and shared by its clients, and
  clients in the same collections share one body, digested once (`SharedBody`); per
  client only its version, identity and signature are its own;
- a version is written only when a digest differs, in a short transaction of its own
  (reading never takes SQLite's write lock);
- a site server reads every client's memberships, reruns and version in three queries as
  it starts (`warm`), so a fleet asking again after a restart is answered from memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from prometheus_client import Counter
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from peerdp.domain.timestamps import rfc3339
from peerdp.security.signing import canonical_json, json_digest
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.mp import polling
from peerdp.site.mp.identity import Caller
from peerdp.site.mp.policy import (
    advertisement_entries,
    all_memberships,
    all_own_reruns,
    dp_body,
    memberships,
    own_reruns,
    with_access_tokens,
    with_reruns,
)
from peerdp.site.notify import ChangeBus
from peerdp.store.db import insert_for
from peerdp.store.models import Machine, PolicyVersion, utcnow

POLICY_COMPUTATIONS = Counter(
    "peerdp_mp_policy_computations",
    "Policies read from the database again because one of their inputs changed (or the "
    "machine was not known yet): `client`, `dp`, and `shared` (a body shared by the "
    "clients in the same collections)",
    ["what"],
)

# Policy computations that read the database at once: the rest wait, so a burst of them
# (a change concerning every waiter) leaves threads for location and admin requests.
COMPUTING_AT_ONCE = 2


@dataclass(frozen=True, slots=True)
class SharedBody:
    """The advertisements of one set of collections, shared by the clients in exactly it."""

    body: dict[str, Any]
    digest: str
    inputs: frozenset[str]  # its collections and their advertisements' packages
    generation: int  # the change generation it was read at


@dataclass(frozen=True, slots=True)
class Read:
    """A piece of policy read from the database, current until one of its inputs moves."""

    value: Any
    inputs: frozenset[str]
    generation: int


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the site knows of one machine's policy, current until one of its inputs moves."""

    version: int
    digest: str
    body: dict[str, Any]
    own: tuple[str, ...]  # inputs of this machine's alone
    shared: frozenset[str]  # inputs shared with the machines in the same collections
    generation: int
    collections: frozenset[int] = frozenset()
    reruns: tuple[tuple[int, int], ...] = ()  # this client's own reruns

    def changed_since_read(self, changes: ChangeBus) -> bool:
        """Whether a change touched one of its inputs since it was read (no copy of them:
        this is asked on every poll)."""
        return changes.changed_since(self.generation, self.own) or changes.changed_since(
            self.generation, self.shared
        )


def _upsert_version(dialect: str) -> Any:
    """A new version for a machine whose policy digest changed (version 1 for a machine
    with none), returning it; no row when the stored digest is that one already. Built
    once: building a statement costs more than running it."""
    insert = insert_for(dialect, PolicyVersion)
    return (
        insert.values(machine_id=bindparam("machine_id"), version=1, digest=bindparam("digest"))
        .on_conflict_do_update(
            index_elements=[PolicyVersion.machine_id],
            set_={"version": PolicyVersion.version + 1, "digest": insert.excluded.digest},
            where=PolicyVersion.digest != insert.excluded.digest,
        )
        .returning(PolicyVersion.version)
    )


_STORED_VERSION = select(PolicyVersion.version).where(
    PolicyVersion.machine_id == bindparam("machine_id")
)


class PolicyService:
    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self._states: dict[str, PolicyState] = {}  # by machine ID
        self._shared: dict[frozenset[int], SharedBody] = {}  # by set of collections
        self._collections: dict[int, Read] = {}  # each collection's advertisement entries
        self._polling: Read | None = None
        self._lock = threading.Lock()
        self._reading_shared = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None
        self._upsert_version = _upsert_version(ctx.db.engine.dialect.name)

    # -- reading ---------------------------------------------------------------------

    def known(self, caller: Caller) -> PolicyState | None:
        """The caller's policy if it is known and none of its inputs changed (no I/O)."""
        state = self._states.get(caller.machine_id)
        if state is None or state.changed_since_read(self.ctx.changes):
            return None
        return state

    async def state(self, caller: Caller) -> PolicyState:
        """The caller's policy now: from memory when current, else read on a thread."""
        state = self.known(caller)
        if state is not None:
            return state
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(COMPUTING_AT_ONCE)
        return await anyio.to_thread.run_sync(self.compute, caller, limiter=self._limiter)

    def compute(self, caller: Caller) -> PolicyState:
        """Read the caller's policy (blocking), writing a new version if it changed."""
        generation = self.ctx.changes.generation  # before reading: later changes count
        previous = self._states.get(caller.machine_id)
        if caller.role == "client":
            state = self._client(caller, generation, previous)
        else:
            state = self._dp(caller, generation, previous)
        with self._lock:
            self._states[caller.machine_id] = state
        return state

    def _client(self, caller: Caller, generation: int, previous: PolicyState | None) -> PolicyState:
        POLICY_COMPUTATIONS.labels("client").inc()
        with self.ctx.db.reading() as s:
            own = previous is not None and not self.ctx.changes.changed_since(
                previous.generation, previous.own
            )
            if own and previous is not None:  # only what it shares changed: its own stands
                collections, reruns = previous.collections, dict(previous.reruns)
            else:
                collections = memberships(s, caller.name)
                reruns = own_reruns(s, caller.name)
            shared = self._shared_body(s, collections, generation)
        return self._client_state(caller, shared, collections, reruns, generation, previous)

    def _client_state(
        self,
        caller: Caller,
        shared: SharedBody,
        collections: frozenset[int],
        reruns: dict[int, int],
        generation: int,
        previous: PolicyState | None,
        stored: tuple[int, str] | None = None,
    ) -> PolicyState:
        body, digest = shared.body, shared.digest
        if reruns:
            body = with_reruns(body, reruns)
            digest = json_digest(body)
        version = self._version(caller.machine_id, digest, previous, stored)
        return PolicyState(
            version,
            digest,
            body,
            (inputs.machine(caller.name),),
            shared.inputs,
            generation,
            collections,
            tuple(sorted(reruns.items())),
        )

    def _shared_body(self, s: Session, collections: frozenset[int], generation: int) -> SharedBody:
        """The body of every client in exactly these collections: their advertisements,
        read per collection, and the site's polling setting."""
        cached = self._shared.get(collections)
        if cached is not None and self._current(cached):
            return cached
        # One reader at a time: the clients woken together by one change wait for the one
        # read of what they share instead of each making it.
        with self._reading_shared:
            cached = self._shared.get(collections)
            if cached is not None and self._current(cached):
                return cached
            POLICY_COMPUTATIONS.labels("shared").inc()
            pieces = list(self._read_collections(s, collections, generation).values())
            setting = self._polling_setting(s, generation)
            entries = sorted(
                (entry for piece in pieces for entry in piece.value), key=lambda e: e["id"]
            )
            body = {"advertisements": entries, "polling": setting.value}
            read = frozenset().union(*(piece.inputs for piece in pieces))
            # Every piece is current as of `generation` (read at its start, or unchanged
            # since it was read): so is the body, until one of their inputs moves.
            shared = SharedBody(body, json_digest(body), read, generation)
            self._shared[collections] = shared
            return shared

    def _current(self, piece: SharedBody | Read) -> bool:
        return not self.ctx.changes.changed_since(piece.generation, piece.inputs)

    def _read_collections(
        self, s: Session, collections: Iterable[int] | None, generation: int
    ) -> dict[int, Read]:
        """Each collection's advertisement entries, read again only where they changed
        (every collection when `collections` is None)."""
        stale = None if collections is None else [c for c in collections if not self._known(c)]
        if stale is None or stale:
            POLICY_COMPUTATIONS.labels("collections").inc()
            found = advertisement_entries(s, stale)
            for collection_id, entries in found.items():
                read = {inputs.collection(collection_id)}
                read |= {inputs.package(entry["package_id"]) for entry in entries}
                self._collections[collection_id] = Read(entries, frozenset(read), generation)
        if collections is None:
            return dict(self._collections)
        return {c: self._collections[c] for c in collections}

    def _known(self, collection_id: int) -> bool:
        read = self._collections.get(collection_id)
        return read is not None and self._current(read)

    def _polling_setting(self, s: Session, generation: int) -> Read:
        """How clients fetch policy (site/mp/polling.py): a change of it touches every
        policy, so it is current until such a change."""
        setting = self._polling
        if setting is None or not self._current(setting):
            setting = self._polling = Read(polling.for_clients(s), frozenset(), generation)
        return setting

    def _dp(self, caller: Caller, generation: int, previous: PolicyState | None) -> PolicyState:
        POLICY_COMPUTATIONS.labels("dp").inc()
        assert caller.dp_id is not None
        with self.ctx.db.reading() as s:
            body = dp_body(s, caller)
        held = [p["id"] for p in body["packages"]] + [p["id"] for p in body["remove"]]
        own = {inputs.dp(caller.dp_id), inputs.DPS}
        own |= {key for pid in held for key in (inputs.package(pid), inputs.package_dps(pid))}
        digest = json_digest(body)
        version = self._version(caller.machine_id, digest, previous)
        return PolicyState(version, digest, body, tuple(sorted(own)), frozenset(), generation)

    # -- versions --------------------------------------------------------------------

    def _version(
        self,
        machine_id: str,
        digest: str,
        previous: PolicyState | None,
        stored: tuple[int, str] | None = None,
    ) -> int:
        """The version of a policy with this digest: the known one when the digest is the
        same, else a new one written (the only write; one statement)."""
        if previous is not None and previous.digest == digest:
            return previous.version
        if stored is not None and stored[1] == digest:
            return stored[0]
        with self.ctx.db.engine.begin() as conn:
            values = {"machine_id": machine_id, "digest": digest}
            written = conn.execute(self._upsert_version, values).scalar()
            if written is None:  # another process wrote this digest first: its version
                written = conn.execute(_STORED_VERSION, values).scalar_one()
            return int(written)

    # -- answering -------------------------------------------------------------------

    def signed(self, caller: Caller, state: PolicyState) -> bytes:
        """The policy document as sent: the state in its envelope, signed."""
        body = state.body
        if caller.role != "client":
            body = with_access_tokens(self.ctx, caller, body)
        policy = {
            "machine_id": caller.machine_id,
            "name": caller.name,
            "role": caller.role,
            "site_code": self.ctx.site_code,
            "version": state.version,
            "generated_at": rfc3339(utcnow()),
            **body,
        }
        document = canonical_json(policy)
        signature = self.ctx.key.sign(document)
        # The signature is added to the signed bytes as they are: no second serialisation.
        return document[:-1] + b',"signature":' + json.dumps(signature).encode() + b"}"

    # -- start -----------------------------------------------------------------------

    def warm(self) -> int:
        """Know every client's policy, reading the database in a few queries (blocking);
        how many. A client whose stored digest differs is left to its first request."""
        generation = self.ctx.changes.generation
        with self.ctx.db.reading() as s:
            members = all_memberships(s)
            reruns = all_own_reruns(s)
            stored = {
                machine_id: (version, digest)
                for machine_id, version, digest in s.execute(
                    select(PolicyVersion.machine_id, PolicyVersion.version, PolicyVersion.digest)
                )
            }
            clients = s.execute(
                select(Machine.id, Machine.name).where(Machine.role == "client")
            ).all()
            self._read_collections(s, None, generation)  # every collection in one query
            shared = {
                c: self._shared_body(s, c, generation) for c in {*members.values(), frozenset()}
            }
        known: dict[str, PolicyState] = {}
        for machine_id, name in clients:
            held = stored.get(machine_id)
            collections = members.get(name, frozenset())
            own_reruns = reruns.get(name, {})
            body = shared[collections]
            digest = json_digest(with_reruns(body.body, own_reruns)) if own_reruns else body.digest
            if held is None or held[1] != digest:
                continue
            caller = Caller(machine_id, "client", name, None, None)
            known[machine_id] = self._client_state(
                caller, body, collections, own_reruns, generation, None, held
            )
        with self._lock:
            for machine_id, state in known.items():
                self._states.setdefault(machine_id, state)
        return len(known)

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
- machines whose policy must be read again are read in batches: those that ask while a
  batch is being read make the next one, which reads in one session and writes the new
  versions of all of them in one short transaction (reading never takes SQLite's write
  lock, and a change concerning 10,000 waiters does not make 10,000 transactions);
- a site server reads every client's memberships, reruns and version in three queries as
  it starts (`warm`), so a fleet asking again after a restart is answered from memory.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Sequence
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

# Batches of policy computations read at once: the rest wait, so a burst of them (a change
# concerning every waiter) leaves threads for location and admin requests.
COMPUTING_AT_ONCE = 2
# Machines in one batch at most: its write transaction stays short.
BATCH = 250


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


@dataclass(frozen=True, slots=True)
class Draft:
    """A machine's policy as read, before its version is known."""

    machine_id: str
    digest: str
    body: dict[str, Any]
    own: tuple[str, ...]
    shared: frozenset[str]
    generation: int
    previous: PolicyState | None
    collections: frozenset[int] = frozenset()
    reruns: tuple[tuple[int, int], ...] = ()

    def with_version(self, version: int) -> PolicyState:
        return PolicyState(
            version,
            self.digest,
            self.body,
            self.own,
            self.shared,
            self.generation,
            self.collections,
            self.reruns,
        )

    def known_version(self) -> int | None:
        """Its version without writing: the one known, if its digest is this."""
        previous = self.previous
        return previous.version if previous and previous.digest == self.digest else None


def _upsert_version(dialect: str) -> Any:
    """A new version for a machine whose policy digest changed (version 1 for a machine
    with none); nothing when the stored digest is that one already (written by another
    process first). Built once: building a statement costs more than running it."""
    insert = insert_for(dialect, PolicyVersion)
    return insert.values(
        machine_id=bindparam("machine_id"), version=1, digest=bindparam("digest")
    ).on_conflict_do_update(
        index_elements=[PolicyVersion.machine_id],
        set_={"version": PolicyVersion.version + 1, "digest": insert.excluded.digest},
        where=PolicyVersion.digest != insert.excluded.digest,
    )


_STORED_VERSIONS = select(PolicyVersion.machine_id, PolicyVersion.version).where(
    PolicyVersion.machine_id.in_(bindparam("machine_ids", expanding=True))
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
        self._upsert_version = _upsert_version(ctx.db.engine.dialect.name)
        # Machines waiting for the next batch (by machine ID: one asking twice is read once).
        self._queued: dict[str, tuple[Caller, list[asyncio.Future[PolicyState]]]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    # -- reading ---------------------------------------------------------------------

    def known(self, caller: Caller) -> PolicyState | None:
        """The caller's policy if it is known and none of its inputs changed (no I/O)."""
        state = self._states.get(caller.machine_id)
        if state is None or state.changed_since_read(self.ctx.changes):
            return None
        return state

    async def state(self, caller: Caller) -> PolicyState:
        """The caller's policy now: from memory when current, else read in the next batch."""
        state = self.known(caller)
        if state is not None:
            return state
        future: asyncio.Future[PolicyState] = asyncio.get_running_loop().create_future()
        queued = self._queued.get(caller.machine_id)
        if queued is None:
            self._queued[caller.machine_id] = (caller, [future])
        else:
            queued[1].append(future)
        if len(self._batches) < COMPUTING_AT_ONCE:
            batches = asyncio.ensure_future(self._read_batches())
            self._batches.add(batches)
            batches.add_done_callback(self._batches.discard)
        return await future

    async def _read_batches(self) -> None:
        """Read the queued machines' policies, a batch at a time, until none is queued."""
        while self._queued:
            batch = [self._queued.pop(key) for key in list(self._queued)[:BATCH]]
            try:
                results = await anyio.to_thread.run_sync(
                    self.compute_many, [caller for caller, _ in batch]
                )
            except Exception as error:  # each request answers with the error
                results = [error] * len(batch)
            for (_, futures), result in zip(batch, results, strict=True):
                for future in futures:
                    if future.done():  # its request went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)

    def compute(self, caller: Caller) -> PolicyState:
        """Read the caller's policy (blocking), writing a new version if it changed."""
        result = self.compute_many([caller])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def compute_many(self, callers: Sequence[Caller]) -> list[PolicyState | Exception]:
        """Read these machines' policies (blocking) in one session, and write the new
        versions in one transaction; a machine that fails has its error in its place."""
        generation = self.ctx.changes.generation  # before reading: later changes count
        drafts: list[Draft | Exception] = []
        with self.ctx.db.reading() as s:
            for caller in callers:
                previous = self._states.get(caller.machine_id)
                try:
                    if caller.role == "client":
                        drafts.append(self._client(s, caller, generation, previous))
                    else:
                        drafts.append(self._dp(s, caller, generation, previous))
                except Exception as error:  # one machine's, not the batch's
                    drafts.append(error)
        versions = self._versions([d for d in drafts if isinstance(d, Draft)])
        results: list[PolicyState | Exception] = []
        with self._lock:
            for draft in drafts:
                if isinstance(draft, Exception):
                    results.append(draft)
                    continue
                version = versions[draft.machine_id]
                if isinstance(version, Exception):
                    results.append(version)
                    continue
                state = draft.with_version(version)
                self._states[draft.machine_id] = state
                results.append(state)
        return results

    def _client(
        self, s: Session, caller: Caller, generation: int, previous: PolicyState | None
    ) -> Draft:
        POLICY_COMPUTATIONS.labels("client").inc()
        own = previous is not None and not self.ctx.changes.changed_since(
            previous.generation, previous.own
        )
        if own and previous is not None:  # only what it shares changed: its own stands
            collections, reruns = previous.collections, dict(previous.reruns)
        else:
            collections = memberships(s, caller.name)
            reruns = own_reruns(s, caller.name)
        shared = self._shared_body(s, collections, generation)
        return self._client_draft(caller, shared, collections, reruns, generation, previous)

    def _client_draft(
        self,
        caller: Caller,
        shared: SharedBody,
        collections: frozenset[int],
        reruns: dict[int, int],
        generation: int,
        previous: PolicyState | None,
    ) -> Draft:
        body, digest = shared.body, shared.digest
        if reruns:
            body = with_reruns(body, reruns)
            digest = json_digest(body)
        return Draft(
            caller.machine_id,
            digest,
            body,
            (inputs.machine(caller.name),),
            shared.inputs,
            generation,
            previous,
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

    def _dp(
        self, s: Session, caller: Caller, generation: int, previous: PolicyState | None
    ) -> Draft:
        POLICY_COMPUTATIONS.labels("dp").inc()
        assert caller.dp_id is not None
        body = dp_body(s, caller)
        held = [p["id"] for p in body["packages"]] + [p["id"] for p in body["remove"]]
        own = {inputs.dp(caller.dp_id), inputs.DPS}
        own |= {key for pid in held for key in (inputs.package(pid), inputs.package_dps(pid))}
        return Draft(
            caller.machine_id,
            json_digest(body),
            body,
            tuple(sorted(own)),
            frozenset(),
            generation,
            previous,
        )

    # -- versions --------------------------------------------------------------------

    def _versions(self, drafts: Sequence[Draft]) -> dict[str, int | Exception]:
        """Each draft's version: the known one when its digest is the same, else a new one,
        written for them all in one transaction (the only write)."""
        versions: dict[str, int | Exception] = {}
        new: list[Draft] = []
        for draft in drafts:
            known = draft.known_version()
            if known is None:
                new.append(draft)
            else:
                versions[draft.machine_id] = known
        if not new:
            return versions
        try:
            versions.update(self._write_versions(new))
        except Exception:
            # One machine's failure (deleted meanwhile) fails the transaction: each is
            # written alone then, so the others get theirs and it its own error.
            for draft in new:
                try:
                    versions.update(self._write_versions([draft]))
                except Exception as error:
                    versions[draft.machine_id] = error
        for draft in new:  # a row that went as it was written (its machine deleted)
            versions.setdefault(draft.machine_id, LookupError(f"{draft.machine_id} is gone"))
        return versions

    def _write_versions(self, drafts: Sequence[Draft]) -> dict[str, int]:
        """Write the drafts' versions in one transaction of two round trips (every upsert
        in one go, then the versions they left), whatever their number."""
        with self.ctx.db.engine.begin() as conn:
            conn.execute(
                self._upsert_version,
                [{"machine_id": d.machine_id, "digest": d.digest} for d in drafts],
            )
            ids = [draft.machine_id for draft in drafts]
            found = conn.execute(_STORED_VERSIONS, {"machine_ids": ids})
            return {machine_id: int(version) for machine_id, version in found}

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
            draft = self._client_draft(caller, body, collections, own_reruns, generation, None)
            known[machine_id] = draft.with_version(held[0])
        with self._lock:
            for machine_id, state in known.items():
                self._states.setdefault(machine_id, state)
        return len(known)

"""Machine authentication: a credential → the calling machine (registration makes them)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Select, select
from starlette.concurrency import run_in_threadpool

from peerdp.site.auth import bearer_of, token_hash
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Forbidden, Unauthorized
from peerdp.site.mp.cache import CACHE_READS
from peerdp.site.status_batch import Who, client, dp
from peerdp.store.models import Client, Machine


@dataclass(frozen=True)
class Caller:
    """An authenticated machine."""

    machine_id: str
    role: str
    name: str
    client_id: int | None
    dp_id: int | None
    # A client's `locate_by` ("reported" or "peer"): kept here so the MP's hot path places
    # it in boundaries without a query; a change is a "machines" change.
    locate_by: str = "reported"

    @property
    def who(self) -> Who:
        """The caller as the MP records its contact: a client by name, a DP by its id."""
        return client(self.name) if self.dp_id is None else dp(self.dp_id)


class CallerCache:
    """Every machine's credential hash → caller, read in one query on first use and kept
    until a machine is deleted, when its credential must stop working at once (in every
    site-server process: a "machines" change). So even in a wave of clients that each
    call for the first time, the MP's hot path needs no query to know its caller."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self._seen = -1  # the "machines" generation the entries are from
        self._entries: dict[str, Caller] = {}
        self._lock = threading.Lock()  # one bulk read at a time

    def get(self, key: str) -> Caller | None:
        """The caller for a credential hash, if known now (no I/O)."""
        if self._seen != self.ctx.changes.generation_of("machines"):
            return None
        return self._entries.get(key)

    def load(self) -> int:
        """Read every machine unless the entries are current (blocking); the generation."""
        with self._lock:
            generation = self.ctx.changes.generation_of("machines")
            if self._seen != generation:
                self._entries = self._read_all()
                self._seen = generation
                gc.freeze()  # long-lived: keep them out of the collector's full passes
            return generation

    def lookup(self, key: str) -> Caller | None:
        """The caller for a credential hash, reading the database if needed (blocking)."""
        generation = self.load()
        with self._lock:
            caller = self._entries.get(key) if self._seen == generation else None
        if caller is None:  # registered since (perhaps through another process), or unknown
            caller = self._read_one(key)
            if caller is not None:
                with self._lock:
                    if self._seen == generation:
                        self._entries[key] = caller
        return caller

    def _read_all(self) -> dict[str, Caller]:
        CACHE_READS.labels("callers").inc()
        with self.ctx.db.reading() as s:
            rows = s.execute(_callers().add_columns(Machine.credential_hash))
            return {key: _caller(row) for *row, key in rows}

    def _read_one(self, key: str) -> Caller | None:
        CACHE_READS.labels("caller").inc()
        with self.ctx.db.reading() as s:
            row = s.execute(_callers().where(Machine.credential_hash == key)).first()
        return None if row is None else _caller(row)


def _callers() -> Select[str, str, str, int | None, int | None, str]:
    return select(
        Machine.id, Machine.role, Machine.name, Machine.client_id, Machine.dp_id, Client.locate_by
    ).outerjoin(Client, Client.id == Machine.client_id)


def _caller(row: Sequence[Any]) -> Caller:
    machine_id, role, name, client_id, dp_id, locate_by = row
    # A DP's machine has no client row (outer join): it is never placed in boundaries.
    return Caller(machine_id, role, name, client_id, dp_id, locate_by or "reported")


def authenticate(ctx: SiteContext, credential: str) -> Caller:
    caller = ctx.mp.callers.lookup(token_hash(credential))
    if caller is None:
        raise Unauthorized("unknown or revoked machine credential")
    return caller


def machine(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the calling machine, which must have one of `roles`. Its contact
    is recorded (in batches) whatever the request then does."""

    async def dependency(request: Request, ctx: SiteContext = Depends(site)) -> Caller:
        return await identify(ctx, request.headers.get("authorization"), roles)

    return dependency


async def identify(ctx: SiteContext, authorization: str | None, roles: Sequence[str]) -> Caller:
    """The machine an Authorization header names, which must have one of `roles`; its
    contact is recorded (in batches). 401 or 403 otherwise."""
    credential = bearer_of(authorization)
    # Known callers are answered on the event loop; only a lookup goes to a thread.
    caller = ctx.mp.callers.get(token_hash(credential))
    if caller is None:
        caller = await run_in_threadpool(authenticate, ctx, credential)
    ctx.mp.sightings.contact(caller.who)
    if caller.role not in roles:
        raise Forbidden(f"a {caller.role} credential cannot do this (needs {' or '.join(roles)})")
    return caller

"""Registration (enrolment token → machine identity) and machine authentication."""

from __future__ import annotations

import gc
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from peerdp.site.auth import bearer, token_hash
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Forbidden, Invalid, Unauthorized
from peerdp.site.mp.cache import CACHE_READS
from peerdp.site.mp.schemas import RegisterIn, RegisterOut
from peerdp.site.status import mp_event
from peerdp.store.models import Client, DistributionPoint, EnrolmentToken, Machine, utcnow


@dataclass(frozen=True)
class Caller:
    """An authenticated machine."""

    machine_id: str
    role: str
    name: str
    client_id: int | None
    dp_id: int | None


def register(ctx: SiteContext, body: RegisterIn) -> RegisterOut:
    credential = "pdm_" + secrets.token_urlsafe(32)
    with ctx.transaction() as s:
        token = s.scalar(
            select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash(body.token))
        )
        if token is None:
            raise Unauthorized("unknown enrolment token")
        if token.expires_at is not None and token.expires_at <= utcnow():
            raise Unauthorized("enrolment token has expired")
        used = s.execute(
            update(EnrolmentToken)
            .where(EnrolmentToken.id == token.id, EnrolmentToken.uses < EnrolmentToken.max_uses)
            .values(uses=EnrolmentToken.uses + 1)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise Unauthorized("enrolment token has been used up")
        machine = Machine(
            id=str(uuid.uuid4()),
            role=token.role,
            name=body.name,
            credential_hash=token_hash(credential),
        )
        if token.role == "client":
            machine.client_id = _client_for(s, body).id
        else:
            machine.dp_id = _dp_for(s, token, body).id
            ctx.changes.publish(s, topology=True)
        s.add(machine)
        mp_event(
            s,
            ctx,
            "machine_registered",
            client_name=body.name if token.role == "client" else None,
            dp_id=machine.dp_id,
            detail=f"{body.name} registered as {token.role}",
        )
    return RegisterOut(
        machine_id=machine.id,
        credential=credential,
        site_public_key=ctx.key.public_key_b64,
        site_code=ctx.site_code,
        role=machine.role,
        dp_id=machine.dp_id,
        client_id=machine.client_id,
    )


def _client_for(s: Session, body: RegisterIn) -> Client:
    client = s.scalar(select(Client).where(Client.name == body.name))
    if client is None:
        client = Client(name=body.name)
        s.add(client)
    client.ip_addresses = body.ip_addresses
    client.ad_site = body.ad_site
    client.last_seen = utcnow()
    s.flush()
    return client


def _dp_for(s: Session, token: EnrolmentToken, body: RegisterIn) -> DistributionPoint:
    dp = s.get(DistributionPoint, token.dp_id)
    if dp is None:
        raise Invalid("the distribution point of this enrolment token no longer exists")
    if body.url is not None:
        dp.url = body.url
    if body.ip_addresses:
        dp.ip_addresses = body.ip_addresses
    if body.ad_site is not None:
        dp.ad_site = body.ad_site
    dp.last_seen = utcnow()
    return dp


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
            rows = s.execute(select(*_CALLER_COLUMNS, Machine.credential_hash))
            return {row[5]: Caller(*row[:5]) for row in rows}

    def _read_one(self, key: str) -> Caller | None:
        CACHE_READS.labels("caller").inc()
        with self.ctx.db.reading() as s:
            row = s.execute(select(*_CALLER_COLUMNS).where(Machine.credential_hash == key)).first()
        return None if row is None else Caller(*row)


_CALLER_COLUMNS = (Machine.id, Machine.role, Machine.name, Machine.client_id, Machine.dp_id)


def authenticate(ctx: SiteContext, credential: str) -> Caller:
    caller = ctx.mp.callers.lookup(token_hash(credential))
    if caller is None:
        raise Unauthorized("unknown or revoked machine credential")
    return caller


def machine(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the calling machine, which must have one of `roles`."""

    async def dependency(request: Request, ctx: SiteContext = Depends(site)) -> Caller:
        credential = bearer(request)
        # Known callers are answered on the event loop; only a lookup goes to a thread.
        caller = ctx.mp.callers.get(token_hash(credential))
        if caller is None:
            caller = await run_in_threadpool(authenticate, ctx, credential)
        if caller.role not in roles:
            raise Forbidden(
                f"a {caller.role} credential cannot do this (needs {' or '.join(roles)})"
            )
        return caller

    return dependency

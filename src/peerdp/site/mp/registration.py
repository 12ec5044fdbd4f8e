"""Registration: an enrolment token turned into a machine identity and its credential.

A name that already has a live identity is not handed out again: the registration is
refused as a conflicting record, unless an administrator allowed the client to re-enrol
(a rebuilt machine) or deleted it. A DP row registered again, and an allowed client
re-enrolment, revoke the previous machine's credential.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from peerdp.site import dp_rows
from peerdp.site.auth import token_hash
from peerdp.site.context import SiteContext
from peerdp.site.errors import Conflict, Forbidden, Invalid, Unauthorized
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.mp.schemas import RegisterIn, RegisterOut, TokenCheckIn
from peerdp.site.status import mp_event
from peerdp.store.models import Client, DistributionPoint, EnrolmentToken, Machine, utcnow

ROLE_WORDS = {"client": "a client", "branch_dp": "a branch DP", "standard_dp": "a standard DP"}


def register(ctx: SiteContext, body: RegisterIn) -> RegisterOut:
    credential = "pdm_" + secrets.token_urlsafe(32)
    refusal: str | None = None
    with ctx.transaction() as s:
        token = _checked(s, body.token, body.role)
        if token.role == "client":
            refusal = _client_conflict(s, ctx, body)
        if refusal is None:  # a refused registration leaves the token's uses as they were
            _spend(s, token)
            machine = _new_machine(s, ctx, token, body, credential)
    if refusal is not None:  # raised after the commit: the status message is kept
        raise Conflict(refusal)
    return RegisterOut(
        machine_id=machine.id,
        credential=credential,
        site_public_key=ctx.key.public_key_b64,
        site_code=ctx.site_code,
        role=machine.role,
        dp_id=machine.dp_id,
        client_id=machine.client_id,
    )


def check_token(ctx: SiteContext, body: TokenCheckIn) -> dict[str, str]:
    """Whether a registration with this token and role would be taken, spending nothing
    (a machine asks before it writes anything to its data directory)."""
    with ctx.db.reading() as s:
        return {"role": _checked(s, body.token, body.role).role}


def _spend(s: Session, token: EnrolmentToken) -> None:
    """Use one of the token's uses (atomically: two registrations may race for the last)."""
    used = s.execute(
        update(EnrolmentToken)
        .where(EnrolmentToken.id == token.id, EnrolmentToken.uses < EnrolmentToken.max_uses)
        .values(uses=EnrolmentToken.uses + 1)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized("enrolment token has been used up")


def _checked(s: Session, secret: str, role: str | None) -> EnrolmentToken:
    token = s.scalar(select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash(secret)))
    if token is None:
        raise Unauthorized("unknown enrolment token")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized("enrolment token has expired")
    if role is not None and role != token.role:
        raise Forbidden(
            f"this enrolment token is for {ROLE_WORDS[token.role]}, not {ROLE_WORDS[role]}"
        )
    if token.uses >= token.max_uses:
        raise Unauthorized("enrolment token has been used up")
    return token


def _client_conflict(s: Session, ctx: SiteContext, body: RegisterIn) -> str | None:
    """Why this client registration is refused (recorded as a status message), if it is."""
    client = s.scalar(select(Client).where(Client.name == body.name))
    if client is None or not s.scalar(select(exists().where(Machine.client_id == client.id))):
        return None
    # One registration consumes the administrator's permission, even when two race.
    allowed = s.execute(
        update(Client)
        .where(Client.id == client.id, Client.reenrol_allowed.is_(True))
        .values(reenrol_allowed=False)
    )
    if allowed.rowcount == 1:  # type: ignore[attr-defined]
        return None
    detail = (
        f"a client named {body.name} is already registered; an administrator must allow "
        f"its re-enrolment (peerdp client reenrol {body.name}) or delete it first"
    )
    mp_event(
        s,
        ctx,
        "conflicting_record",
        client_name=body.name,
        severity="warning",
        detail=f"registration refused: {detail}",
    )
    return detail


def _new_machine(
    s: Session, ctx: SiteContext, token: EnrolmentToken, body: RegisterIn, credential: str
) -> Machine:
    machine = Machine(
        id=str(uuid.uuid4()),
        role=token.role,
        name=body.name,
        credential_hash=token_hash(credential),
    )
    if token.role == "client":
        machine.client_id = _client_for(s, body).id
        revoked = _revoke(s, Machine.client_id == machine.client_id)
    else:
        # The DP row is locked first, so two machines registering as it at once take turns
        # (PostgreSQL; SQLite's write lock already serialises) and one credential survives.
        dp = _dp_for(s, token, body)
        machine.dp_id = dp.id
        revoked = _revoke(s, Machine.dp_id == machine.dp_id)
        ctx.changes.publish(s, topology=True, concerns=[inputs.dp(dp.id), inputs.DPS])
        dp_rows.retry_on_contact(ctx, s, dp, "registered with the site")
    if revoked:
        # The old credential stops working at once; a poll it holds is answered.
        ctx.changes.publish(s, machines=True, concerns=[inputs.machine(body.name)])
    s.add(machine)
    replaced = "; the previous machine's credential is revoked" if revoked else ""
    mp_event(
        s,
        ctx,
        "machine_registered",
        client_name=body.name if token.role == "client" else None,
        dp_id=machine.dp_id,
        detail=f"{body.name} registered as {token.role}{replaced}",
    )
    return machine


def _revoke(s: Session, which: ColumnElement[bool]) -> int:
    """Delete the machine identities `which` selects; how many there were."""
    gone = s.execute(delete(Machine).where(which))
    return int(gone.rowcount)  # type: ignore[attr-defined]


def _client_for(s: Session, body: RegisterIn) -> Client:
    client = s.scalar(select(Client).where(Client.name == body.name))
    if client is None:
        client = Client(name=body.name)
        s.add(client)
    client.ip_addresses = body.ip_addresses
    client.ad_site = body.ad_site
    client.last_seen = utcnow()
    client.reenrol_allowed = False  # a permission is for one registration
    s.flush()
    return client


def _dp_for(s: Session, token: EnrolmentToken, body: RegisterIn) -> DistributionPoint:
    dp = s.get(DistributionPoint, token.dp_id, with_for_update=True)
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

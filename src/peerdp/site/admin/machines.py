"""`/api/v1/enrolment-tokens` and `/api/v1/clients`: how machines join, and who joined."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from peerdp.domain.boundaries import PLACED_BY
from peerdp.site.admin.schemas import (
    ClientOut,
    ClientPatch,
    EnrolmentTokenCreated,
    EnrolmentTokenIn,
    EnrolmentTokenOut,
)
from peerdp.site.auth import token_hash
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Invalid
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.status import site_event
from peerdp.store.models import Client, DistributionPoint, EnrolmentToken, utcnow

router = APIRouter(tags=["machines"])

DP_ROLES = {"branch_dp": "branch", "standard_dp": "standard"}


@router.get("/enrolment-tokens", response_model=list[EnrolmentTokenOut])
def list_tokens(ctx: SiteContext = Depends(site)) -> list[EnrolmentToken]:
    with ctx.transaction() as s:
        return list(s.scalars(select(EnrolmentToken).order_by(EnrolmentToken.id)))


@router.post("/enrolment-tokens", response_model=EnrolmentTokenCreated, status_code=201)
def create_token(body: EnrolmentTokenIn, ctx: SiteContext = Depends(site)) -> dict[str, object]:
    """Make an enrolment token; the token itself is shown only in this answer."""
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise Invalid("expires_at is in the past")
    with ctx.transaction() as s:
        if body.role in DP_ROLES:
            if body.dp_id is None:
                raise Invalid(f"a {body.role} token needs dp_id: the DP it registers as")
            dp = get_or_404(s, DistributionPoint, body.dp_id, "distribution point")
            if dp.kind != DP_ROLES[body.role]:
                raise Invalid(f"distribution point {dp.id} is a {dp.kind} DP, not {body.role}")
        elif body.dp_id is not None:
            raise Invalid("a client token takes no dp_id")
        token = "pde_" + secrets.token_urlsafe(32)
        row = EnrolmentToken(token_hash=token_hash(token), **body.model_dump())
        s.add(row)
        s.flush()
        return {**EnrolmentTokenOut.model_validate(row).model_dump(), "token": token}


@router.get("/enrolment-tokens/{token_id}", response_model=EnrolmentTokenOut)
def get_token(token_id: int, ctx: SiteContext = Depends(site)) -> EnrolmentToken:
    with ctx.transaction() as s:
        return get_or_404(s, EnrolmentToken, token_id, "enrolment token")


@router.delete("/enrolment-tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        s.delete(get_or_404(s, EnrolmentToken, token_id, "enrolment token"))


@router.get("/clients", response_model=list[ClientOut])
def list_clients(
    name: str | None = Query(default=None, max_length=200, description="only the client named so"),
    ctx: SiteContext = Depends(site),
) -> list[Client]:
    query = select(Client).order_by(Client.name)
    if name is not None:
        query = query.where(Client.name == name)
    with ctx.transaction() as s:
        return list(s.scalars(query))


@router.get("/clients/{client_id}", response_model=ClientOut)
def get_client(client_id: int, ctx: SiteContext = Depends(site)) -> Client:
    with ctx.transaction() as s:
        return get_or_404(s, Client, client_id, "client")


@router.patch("/clients/{client_id}", response_model=ClientOut)
def patch_client(client_id: int, body: ClientPatch, ctx: SiteContext = Depends(site)) -> Client:
    """Pin how the client is placed in boundaries (`locate_by`), or unpin it."""
    with ctx.transaction() as s:
        client = get_or_404(s, Client, client_id, "client")
        if client.locate_by != body.locate_by:
            client.locate_by = body.locate_by
            site_event(
                s,
                ctx,
                "client_placement_changed",
                client_name=client.name,
                detail=f"{client.name} is now placed in boundaries by {PLACED_BY[body.locate_by]}",
            )
            # The MP keeps it with the credential; no policy reads it.
            ctx.changes.publish(s, machines=True, concerns=())
        return client


@router.post("/clients/{client_id}/reenrol", response_model=ClientOut)
def allow_reenrolment(client_id: int, ctx: SiteContext = Depends(site)) -> Client:
    """Let the next registration under this client's name succeed (a rebuilt machine);
    it revokes the credential the client holds now."""
    with ctx.transaction() as s:
        client = get_or_404(s, Client, client_id, "client")
        client.reenrol_allowed = True
        site_event(
            s,
            ctx,
            "reenrolment_allowed",
            client_name=client.name,
            detail=f"the next registration as {client.name} replaces its current identity",
        )
        return client


@router.delete("/clients/{client_id}", status_code=204)
def delete_client(client_id: int, ctx: SiteContext = Depends(site)) -> None:
    """Forget a client; its credential stops working (it must enrol again)."""
    with ctx.transaction() as s:
        client = get_or_404(s, Client, client_id, "client")
        s.delete(client)
        # Its credential stops working at once; a poll it holds is answered.
        ctx.changes.publish(s, machines=True, concerns=[inputs.machine(client.name)])

"""The `/mp/v1` endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from peerdp.domain.location import describe
from peerdp.domain.transfer_limits import describe as describe_limit
from peerdp.site import dp_rows
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import NotFound, body_schema, parse_body
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.mp import status
from peerdp.site.mp.identity import Caller, machine
from peerdp.site.mp.location import Request as LocationRequest
from peerdp.site.mp.peers import peer_address, record_peer_address
from peerdp.site.mp.registration import check_token, register
from peerdp.site.mp.schemas import (
    AnnounceIn,
    DPSettingsIn,
    LocatedDP,
    LocationIn,
    LocationOut,
    RegisterIn,
    RegisterOut,
    StatusBatch,
    StatusResult,
    TokenCheckIn,
)
from peerdp.store.models import DistributionPoint

router = APIRouter(prefix="/mp/v1", tags=["management point"])
ANY_MACHINE = machine("client", "branch_dp", "standard_dp")


@router.post("/register", response_model=RegisterOut, status_code=201)
def register_machine(
    body: RegisterIn, http: Request, ctx: SiteContext = Depends(site)
) -> RegisterOut:
    """Turn an enrolment token into a machine identity and credential."""
    answer = register(ctx, body)
    if answer.client_id is not None:
        record_peer_address(ctx, answer.client_id, peer_address(http))
    return answer


@router.post("/register/check")
def check_enrolment_token(body: TokenCheckIn, ctx: SiteContext = Depends(site)) -> dict[str, str]:
    """Whether the site takes this enrolment token for this role (nothing is spent)."""
    return check_token(ctx, body)


@router.post("/announce")
def announce(
    body: AnnounceIn,
    caller: Caller = Depends(machine("branch_dp", "standard_dp")),
    ctx: SiteContext = Depends(site),
) -> dict[str, Any]:
    """A DP tells the site, as it starts, that it is up: at a new URL (it moved to another
    port or host), or, without `url`, at the one the site knows. What failed only because
    the site could not reach it is retried now."""
    with ctx.transaction() as s:
        dp = _callers_dp(s, caller)
        previous = dp.url
        if body.url is not None and previous != body.url:
            dp.url = body.url
            status.machine_event(
                ctx,
                s,
                caller,
                "dp_url_changed",
                dp_id=dp.id,
                detail=f"{dp.name} now serves at {body.url} (was {previous})",
            )
            ctx.changes.publish(s, topology=True, concerns=[inputs.dp(dp.id), inputs.DPS])
        contact = f"announced that it serves at {body.url}" if body.url else "started again"
        dp_rows.retry_on_contact(ctx, s, dp, contact)
        return {"dp_id": dp.id, "url": dp.url}


@router.post("/dp-settings")
def dp_settings(
    body: DPSettingsIn,
    caller: Caller = Depends(machine("branch_dp", "standard_dp")),
    ctx: SiteContext = Depends(site),
) -> dict[str, Any]:
    """A DP tells the site the settings it was started with that override the site's
    (`max_transfers_override`: its --max-transfers, or null), so `dp show` shows what is in
    force."""
    with ctx.transaction() as s:
        dp = _callers_dp(s, caller)
        if dp.max_transfers_override != body.max_transfers_override:
            dp.max_transfers_override = body.max_transfers_override
            status.machine_event(
                ctx,
                s,
                caller,
                "dp_settings",
                dp_id=dp.id,
                detail=f"{dp.name} serves {describe_limit(dp.max_transfers_in_force)} "
                + (
                    "(its --max-transfers)"
                    if body.max_transfers_override is not None
                    else "(the site's setting)"
                ),
            )
        return {
            "dp_id": dp.id,
            "max_transfers": dp.max_transfers,
            "max_transfers_override": dp.max_transfers_override,
            "max_transfers_in_force": dp.max_transfers_in_force,
        }


def _callers_dp(s: Session, caller: Caller) -> DistributionPoint:
    """The DP row the calling DP registered as (deleted since: 404)."""
    dp = s.get(DistributionPoint, caller.dp_id)
    if dp is None:
        raise NotFound("this DP no longer exists at the site")
    return dp


@router.get("/ping")
async def ping(caller: Caller = Depends(ANY_MACHINE)) -> dict[str, str]:
    """Check a credential: who the site thinks the caller is."""
    return {"machine_id": caller.machine_id, "name": caller.name, "role": caller.role}


@router.post("/content-location", response_model=LocationOut, openapi_extra=body_schema(LocationIn))
async def content_location(
    http: Request,
    caller: Caller = Depends(machine("client")),
    ctx: SiteContext = Depends(site),
) -> Response:
    """Where the caller may download a package version from, in order; why not, if nowhere."""
    # The body is parsed by pydantic in one step: FastAPI's generic body handling cost more
    # than the location decision itself on this, the MP's busiest endpoint.
    body = parse_body(LocationIn, await http.body())
    request = LocationRequest(
        client_name=caller.name,
        advertisement_id=body.advertisement_id,
        package_id=body.package_id,
        source_version=body.source_version,
        ip_addresses=tuple(body.ip_addresses),
        ad_site=body.ad_site,
        peer_address=peer_address(http),
        locate_by=caller.locate_by,
    )
    service = ctx.mp.location
    # Warm facts are answered on the event loop; anything needing the database runs in a
    # thread (a thread-pool hop per request would cost more than the decision itself).
    outcome = service.locate_cached(request)
    if outcome is None:
        outcome = await run_in_threadpool(service.locate, request)
    ranked = outcome.decision.distribution_points
    token = ctx.mp.access_tokens.get(body.package_id, body.source_version, caller.name)
    answer = LocationOut(
        advertisement_id=body.advertisement_id,
        package_id=body.package_id,
        source_version=body.source_version,
        distribution_points=[
            LocatedDP(
                dp_id=r.dp.id,
                name=r.dp.name,
                url=r.dp.url or None,
                kind=r.dp.kind,
                protected=r.protected,
                locality=r.locality,
                connection=r.connection,
                bits_enabled=r.dp.bits_enabled,
                access_token=token,
            )
            for r in ranked
        ],
        reason=outcome.decision.reason,
        detail="" if ranked else describe(outcome.decision),
        on_demand=[{"dp_id": k, "action": v} for k, v in outcome.provisioned.items()],
    )
    # Serialised by pydantic directly: FastAPI's generic path would validate it again.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/status", response_model=StatusResult)
async def post_status(
    body: StatusBatch, caller: Caller = Depends(ANY_MACHINE), ctx: SiteContext = Depends(site)
) -> StatusResult:
    """Take a batch of status messages; refused ones are listed with the reason."""
    return await run_in_threadpool(status.receive, ctx, caller, body)

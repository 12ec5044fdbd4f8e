"""The console's clients: the list (100,000 of them: a page at a time, filtered in SQL),
one client's page with its history per advertisement, and its actions: rerun an
advertisement for it, allow its re-enrolment, delete it (after a confirmation page)."""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.sql import Select

from peerdp.domain.boundaries import placement
from peerdp.domain.visible_names import invisible_character
from peerdp.site.admin.machines import allow_reenrolment, delete_client, get_client
from peerdp.site.admin.schemas import ClientOut
from peerdp.site.console.actions import DELETE_CLIENT, REENROL, RERUN, Posted, act, may
from peerdp.site.console.deps import posted, user
from peerdp.site.console.pages import refused
from peerdp.site.console.paging import PageNumber, Paging, one_of, page_of, prefix
from peerdp.site.console.render import page, page_or_live
from peerdp.site.console.reruns import chosen_advertisement, rerun_one
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError, Invalid
from peerdp.store.models import Advertisement, Client, DeploymentStateRow, DistributionPoint

router = APIRouter()
ClientId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# A client is enrolled (its credential works) until an administrator allows its
# re-enrolment: the next registration under its name then replaces it.
ClientState = Literal["enrolled", "reenrol_allowed"]
STATE_WORDS: dict[str, str] = {"enrolled": "enrolled", "reenrol_allowed": "re-enrolment allowed"}


@dataclass(frozen=True)
class ClientLine:
    """A client as the console shows it: what it is, and where it is now."""

    client: ClientOut
    boundaries: tuple[str, ...]

    @property
    def state(self) -> str:
        return "reenrol_allowed" if self.client.reenrol_allowed else "enrolled"


@dataclass(frozen=True)
class HistoryLine:
    """One advertisement on one client: its deployment_states row, named."""

    advertisement_id: int
    advertisement_name: str
    state: str
    reason: str
    exit_code: int | None
    restart_required: bool
    source_version: int
    source_dp_name: str | None
    at: datetime


def _matching(dialect: str, prefix: str, state: ClientState | None) -> Select[Client]:
    query = select(Client)
    if prefix:
        query = query.where(_named_from(dialect, prefix))
    if state is not None:
        query = query.where(Client.reenrol_allowed.is_(state == "reenrol_allowed"))
    return query


def _named_from(dialect: str, prefix: str) -> ColumnElement[bool]:
    """Names starting with `prefix` in any case (Windows' machine names are case-blind),
    found by the index ix_clients_name_folded; % and _ are plain characters."""
    folded = func.lower(Client.name)
    if dialect == "postgresql":  # its lower() folds every letter; pattern operators
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return folded.like(escaped + "%", escape="\\")
    # SQLite's lower() folds ASCII letters alone: the prefix is folded alike, and the names
    # starting with it are those between it and the next string of its length.
    start = prefix.translate(_ASCII_LOWER)
    return and_(folded >= start, folded < start[:-1] + _after(start[-1]))


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SURROGATES = range(0xD800, 0xE000)  # not characters: no UTF-8 text holds one


def _after(character: str) -> str:
    """The next character that a text can hold (the last stays itself)."""
    following = min(ord(character) + 1, sys.maxunicode)
    return chr(_SURROGATES.stop if following in _SURROGATES else following)


def client_page(
    ctx: SiteContext, prefix: str, state: ClientState | None, number: int
) -> tuple[list[ClientLine], int]:
    """One page of the clients whose name starts with `prefix` (any case) in `state`, by
    name, each with the boundaries it is in now; and how many clients match."""
    with ctx.db.reading() as s:
        query = _matching(s.get_bind().dialect.name, prefix, state)
        # By name; named from a prefix, in the order of the index that finds them (walking
        # the names' own index instead passes every name before theirs: 87 ms for pc9...).
        order = (func.lower(Client.name), Client.name) if prefix else (Client.name,)
        rows, matched = page_of(s, query.order_by(*order), number)
        clients = [ClientOut.model_validate(client) for (client,) in rows]
    return [ClientLine(c, boundaries_of(ctx, c)) for c in clients], matched


def boundaries_of(ctx: SiteContext, client: ClientOut) -> tuple[str, ...]:
    """The names of the boundaries the client is in now, as the MP places it (by what it
    reports, or by its connection's address if it is pinned so)."""
    addresses, ad_site = placement(
        tuple(client.ip_addresses), client.ad_site, client.peer_address, client.locate_by
    )
    index = ctx.mp.location.view().boundary_index
    return tuple(m.boundary.name for m in index.match(addresses, ad_site))


def history(ctx: SiteContext, client_name: str) -> list[HistoryLine]:
    """Where each advertisement stands on the client, the latest report first."""
    query = (
        select(DeploymentStateRow, Advertisement.name, DistributionPoint.name)
        .join(Advertisement, Advertisement.id == DeploymentStateRow.advertisement_id)
        .outerjoin(DistributionPoint, DistributionPoint.id == DeploymentStateRow.source_dp_id)
        .where(DeploymentStateRow.client_name == client_name)
        .order_by(DeploymentStateRow.at.desc(), DeploymentStateRow.advertisement_id)
    )
    with ctx.db.reading() as s:
        return [
            HistoryLine(
                advertisement_id=row.advertisement_id,
                advertisement_name=adv_name,
                state=row.state,
                reason=row.reason,
                exit_code=row.exit_code,
                restart_required=row.restart_required,
                source_version=row.source_version,
                source_dp_name=dp_name,
                at=row.at,
            )
            for row, adv_name, dp_name in s.execute(query)
        ]


def _prefix(given: str) -> str:
    found = invisible_character(given)
    if found is not None:
        raise Invalid(f"name: a machine name shows every character (found {found})")
    return given.strip()


ClientsName = prefix("name")
StateFilter = one_of(tuple(STATE_WORDS))


def _clients(
    request: Request,
    template: str,
    who: SignedIn,
    ctx: SiteContext,
    name: str,
    state: str,
    number: int,
) -> Response:
    try:
        folded = _prefix(name)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/clients")
    chosen = cast(ClientState, state) if state else None
    lines, matched = client_page(ctx, folded, chosen, number)
    filters = {"name": folded, "state": state}
    return page(
        request,
        template,
        who,
        clients=lines,
        paging=Paging("/console/clients", number, matched, filters),
        filters=filters,
        states=STATE_WORDS,
        note=request.query_params.get("note"),
    )


@router.get("/clients")
@router.get("/clients/live")
def clients_page(
    request: Request,
    name: str = ClientsName,
    state: str = StateFilter,
    number: int = PageNumber,
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    return _clients(
        request,
        page_or_live(request, "clients.html", "_clients_live.html"),
        who,
        ctx,
        name,
        state,
        number,
    )


def _client(ctx: SiteContext, client_id: int) -> ClientOut:
    return ClientOut.model_validate(get_client(client_id, ctx))


def _one_client(
    request: Request, template: str, who: SignedIn, ctx: SiteContext, client_id: int
) -> Response:
    try:
        client = _client(ctx, client_id)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/clients")
    return page(
        request,
        template,
        who,
        line=ClientLine(client, boundaries_of(ctx, client)),
        c=client,
        states=STATE_WORDS,
        history=history(ctx, client.name),
        may=may(who),
        note=request.query_params.get("note"),
    )


@router.get("/clients/{client_id}")
@router.get("/clients/{client_id}/live")
def client_detail(
    request: Request,
    client_id: ClientId,
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    return _one_client(
        request, page_or_live(request, "client.html", "_client_live.html"), who, ctx, client_id
    )


@router.get("/clients/{client_id}/delete")
def confirm_delete(
    request: Request,
    client_id: ClientId,
    who: SignedIn = Depends(user),
    ctx: SiteContext = Depends(site),
) -> Response:
    """The confirmation step: what deleting the client means, and the form that does it."""
    try:
        client = _client(ctx, client_id)
    except ApiError as exc:
        return refused(request, who, exc, back="/console/clients")
    return page(request, "client_delete.html", who, c=client, may=may(who))


def _back(client_id: int) -> str:
    return f"/console/clients/{client_id}"


@router.post("/clients/{client_id}/delete")
def delete(
    request: Request,
    client_id: ClientId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        name = _client(ctx, client_id).name
        delete_client(client_id, ctx)
        return f"Deleted client {name}: it must enrol again."

    return act(request, ctx, checked[0], DELETE_CLIENT, "/console/clients", do)


@router.post("/clients/{client_id}/reenrol")
def reenrol(
    request: Request,
    client_id: ClientId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        name = allow_reenrolment(client_id, ctx).name
        return f"Re-enrolment allowed: the next registration as {name} replaces this machine."

    return act(request, ctx, checked[0], REENROL, _back(client_id), do)


@router.post("/clients/{client_id}/rerun")
def rerun(
    request: Request,
    client_id: ClientId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    who, form = checked

    def do() -> str:
        return rerun_one(ctx, chosen_advertisement(form), _client(ctx, client_id).name)

    return act(request, ctx, who, RERUN, _back(client_id), do)

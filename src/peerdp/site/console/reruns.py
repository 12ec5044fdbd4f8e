"""Running an advertisement again (SCCM's "rerun advertisement"), from the console: on one
client (its row on the advertisement's page, or the client's page), or on every client
it failed on. Each is the API's own rerun (`POST /advertisements/{id}/rerun`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from peerdp.site.admin.advertisements import get_advertisement, rerun_advertisement
from peerdp.site.admin.schemas import RerunIn, RerunOut
from peerdp.site.admin.status_summaries import AdvertisementId
from peerdp.site.console.actions import RERUN, Posted, act, api_body
from peerdp.site.console.deps import posted
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Invalid

router = APIRouter()


def chosen_advertisement(form: FormData) -> int:
    given = form.get("advertisement_id")
    if not isinstance(given, str) or not given.isdigit() or not 0 < int(given) < 2**31:
        raise Invalid("choose an advertisement to run again")
    return int(given)


def rerun_one(ctx: SiteContext, advertisement_id: int, client_name: str) -> str:
    """Rerun the advertisement on one client; the note saying so."""
    body = api_body(RerunIn, {"client_name": client_name})
    rerun_advertisement(advertisement_id, body, ctx)
    name = get_advertisement(advertisement_id, ctx).name
    return f"{name} will run again on {client_name}."


def rerun_failed(ctx: SiteContext, advertisement_id: int) -> str:
    """Rerun the advertisement on each client of its collection it failed on; the note."""
    done = rerun_advertisement(advertisement_id, RerunIn(failed=True), ctx)
    assert isinstance(done, RerunOut)
    name = get_advertisement(advertisement_id, ctx).name
    return f"{name} will run again on the {done.failed_clients} client(s) it failed on."


def _back(advertisement_id: int) -> str:
    return f"/console/advertisements/{advertisement_id}"


@router.post("/advertisements/{advertisement_id}/rerun")
def rerun_client(
    request: Request,
    advertisement_id: AdvertisementId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    """Rerun on the client named in the form (a row of the advertisement's page)."""
    who, form = checked

    def do() -> str:
        client_name = form.get("client_name")
        if not isinstance(client_name, str) or not client_name:
            raise Invalid("choose a client to run the advertisement on again")
        return rerun_one(ctx, advertisement_id, client_name)

    return act(request, ctx, who, RERUN, _back(advertisement_id), do)


@router.post("/advertisements/{advertisement_id}/rerun-failed")
def rerun_failed_clients(
    request: Request,
    advertisement_id: AdvertisementId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        return rerun_failed(ctx, advertisement_id)

    return act(request, ctx, checked[0], RERUN, _back(advertisement_id), do)

"""`/api/v1/advertisements`: a package's program offered to a collection."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from peerdp.site.admin.schemas import (
    AdvertisementIn,
    AdvertisementOut,
    AdvertisementPatch,
    RerunIn,
    RerunOut,
)
from peerdp.site.context import SiteContext, exists_or_404, get_or_404, site
from peerdp.site.errors import Conflict, Invalid
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.packages import live_package
from peerdp.site.status import site_event
from peerdp.store.models import (
    Advertisement,
    AdvertisementRerun,
    Collection,
    CollectionMember,
    DeploymentStateRow,
    Program,
    utcnow,
)

router = APIRouter(prefix="/advertisements", tags=["advertisements"])


def _check(s: Session, adv: Advertisement) -> None:
    live_package(s, adv.package_id)
    exists_or_404(s, Collection, adv.collection_id, "collection")
    program = s.scalar(
        select(Program.id).where(
            Program.package_id == adv.package_id, Program.name == adv.program_name
        )
    )
    if program is None:
        raise Invalid(f"package {adv.package_id} has no program named '{adv.program_name}'")
    if adv.mandatory_at is not None and adv.mandatory_at < adv.available_at:
        raise Invalid("mandatory_at is before available_at")


@router.get("", response_model=list[AdvertisementOut])
def list_advertisements(ctx: SiteContext = Depends(site)) -> list[Advertisement]:
    with ctx.transaction() as s:
        return list(s.scalars(select(Advertisement).order_by(Advertisement.id)))


@router.post("", response_model=AdvertisementOut, status_code=201)
def create_advertisement(body: AdvertisementIn, ctx: SiteContext = Depends(site)) -> Advertisement:
    with ctx.transaction() as s:
        fields = body.model_dump()
        fields["available_at"] = fields["available_at"] or utcnow()
        adv = Advertisement(**fields)
        _check(s, adv)
        s.add(adv)
        s.flush()
        ctx.changes.publish(s, concerns=[inputs.collection(adv.collection_id)])
        return adv


@router.get("/{advertisement_id}", response_model=AdvertisementOut)
def get_advertisement(advertisement_id: int, ctx: SiteContext = Depends(site)) -> Advertisement:
    with ctx.transaction() as s:
        return get_or_404(s, Advertisement, advertisement_id, "advertisement")


@router.patch("/{advertisement_id}", response_model=AdvertisementOut)
def patch_advertisement(
    advertisement_id: int, body: AdvertisementPatch, ctx: SiteContext = Depends(site)
) -> Advertisement:
    with ctx.transaction() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        offered_to = adv.collection_id
        for name, value in body.model_dump(exclude_unset=True).items():
            if value is None and name != "mandatory_at":
                raise Invalid(f"{name} cannot be null")
            setattr(adv, name, value)
        _check(s, adv)
        s.flush()
        concerned = {inputs.collection(offered_to), inputs.collection(adv.collection_id)}
        ctx.changes.publish(s, concerns=concerned)
        return adv


@router.delete("/{advertisement_id}", status_code=204)
def delete_advertisement(advertisement_id: int, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        s.delete(adv)
        ctx.changes.publish(s, concerns=[inputs.collection(adv.collection_id)])


@router.post("/{advertisement_id}/rerun", response_model=RerunOut, status_code=201)
def rerun_advertisement(
    advertisement_id: int, body: RerunIn | None = None, ctx: SiteContext = Depends(site)
) -> AdvertisementRerun | RerunOut:
    """Run the advertisement again on one client (`client_name`), on every client, or on
    each client it failed on (`failed`; 409 if none).

    The clients learn of it through their policy and run the program again from its first
    attempt, whether it succeeded or failed for good (SCCM's "rerun advertisement"). A
    status message `advertisement_rerun` records it.
    """
    name = body.client_name if body is not None else None
    if body is not None and body.failed:
        if name is not None:
            raise Invalid("give client_name or failed, not both")
        return _rerun_failed(advertisement_id, ctx)
    with ctx.transaction() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        if name is not None and s.get(CollectionMember, (adv.collection_id, name)) is None:
            raise Invalid(
                f"client_name: {name} is not a member of collection {adv.collection_id}, "
                f"which advertisement {adv.id} is offered to"
            )
        rerun = AdvertisementRerun(advertisement_id=adv.id, client_name=name)
        s.add(rerun)
        s.flush()
        site_event(
            s,
            ctx,
            "advertisement_rerun",
            advertisement_id=adv.id,
            package_id=adv.package_id,
            client_name=name,
            detail=f"advertisement {adv.id} ({adv.name}) to run again on "
            + (f"client {name}" if name else f"every client of collection {adv.collection_id}"),
        )
        # A rerun for one client is applied on top of the body its collections share.
        concerned = inputs.machine(name) if name else inputs.collection(adv.collection_id)
        ctx.changes.publish(s, concerns=[concerned])
        return rerun


def _rerun_failed(advertisement_id: int, ctx: SiteContext) -> RerunOut:
    """One rerun for each member of the collection whose state for the advertisement is
    failed, in one transaction (10,000 of them in one request), and one status message."""
    with ctx.transaction() as s:
        adv = get_or_404(s, Advertisement, advertisement_id, "advertisement")
        member = (CollectionMember.collection_id == adv.collection_id) & (
            CollectionMember.machine_name == DeploymentStateRow.client_name
        )
        failed = (
            select(DeploymentStateRow.client_name)
            .join(CollectionMember, member)
            .where(
                DeploymentStateRow.advertisement_id == adv.id,
                DeploymentStateRow.state == "failed",
            )
            .order_by(DeploymentStateRow.client_name)
        )
        names = list(s.scalars(failed))
        if not names:
            raise Conflict(
                f"advertisement {adv.id} ({adv.name}) has failed on no client of "
                f"collection {adv.collection_id}"
            )
        now = utcnow()
        rows = [{"advertisement_id": adv.id, "client_name": n, "requested_at": now} for n in names]
        s.execute(insert(AdvertisementRerun), rows)
        last = s.scalar(
            select(func.max(AdvertisementRerun.id)).where(
                AdvertisementRerun.advertisement_id == adv.id
            )
        )
        site_event(
            s,
            ctx,
            "advertisement_rerun",
            advertisement_id=adv.id,
            package_id=adv.package_id,
            detail=f"advertisement {adv.id} ({adv.name}) to run again on the {len(names)} "
            "client(s) it failed on",
        )
        ctx.changes.publish(s, concerns=[inputs.machine(name) for name in names])
        assert last is not None
        return RerunOut(
            id=last,
            advertisement_id=adv.id,
            client_name=None,
            requested_at=now,
            failed_clients=len(names),
        )

"""`/api/v1/boundaries`: network locations, with their connection class."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import func, select

from peerdp.domain.boundaries import check_boundary_input
from peerdp.site.admin.schemas import BoundaryIn, BoundaryOut, BoundaryPatch
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Conflict, Invalid
from peerdp.store.models import Boundary, ProtectedBoundary

router = APIRouter(prefix="/boundaries", tags=["boundaries"])


def _check_value(type_: str, value: str) -> None:
    try:
        check_boundary_input(type_, value)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


@router.get("", response_model=list[BoundaryOut])
def list_boundaries(ctx: SiteContext = Depends(site)) -> list[Boundary]:
    with ctx.transaction() as s:
        return list(s.scalars(select(Boundary).order_by(Boundary.id)))


@router.post("", response_model=BoundaryOut, status_code=201)
def create_boundary(body: BoundaryIn, ctx: SiteContext = Depends(site)) -> Boundary:
    _check_value(body.type, body.value)
    with ctx.transaction() as s:
        boundary = Boundary(**body.model_dump())
        s.add(boundary)
        s.flush()
        ctx.changes.publish(s, topology=True, concerns=())  # no policy reads boundaries
        return boundary


@router.get("/{boundary_id}", response_model=BoundaryOut)
def get_boundary(boundary_id: int, ctx: SiteContext = Depends(site)) -> Boundary:
    with ctx.transaction() as s:
        return get_or_404(s, Boundary, boundary_id, "boundary")


@router.patch("/{boundary_id}", response_model=BoundaryOut)
def patch_boundary(
    boundary_id: int, body: BoundaryPatch, ctx: SiteContext = Depends(site)
) -> Boundary:
    with ctx.transaction() as s:
        boundary = get_or_404(s, Boundary, boundary_id, "boundary")
        for name, value in body.model_dump(exclude_unset=True).items():
            if value is None:
                raise Invalid(f"{name} cannot be null")
            setattr(boundary, name, value)
        _check_value(boundary.type, boundary.value)
        s.flush()
        ctx.changes.publish(s, topology=True, concerns=())  # no policy reads boundaries
        return boundary


@router.delete("/{boundary_id}", status_code=204)
def delete_boundary(boundary_id: int, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        boundary = get_or_404(s, Boundary, boundary_id, "boundary")
        users = s.scalar(select(func.count()).where(ProtectedBoundary.boundary_id == boundary_id))
        if users:
            raise Conflict(
                f"boundary {boundary_id} is protected by {users} distribution point(s); "
                "remove it from their protected boundaries first"
            )
        s.delete(boundary)
        ctx.changes.publish(s, topology=True, concerns=())  # no policy reads boundaries

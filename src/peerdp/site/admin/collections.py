"""`/api/v1/collections`: named sets of machines, by machine name."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Depends
from sqlalchemy import select

from peerdp.site.admin.schemas import CollectionIn, CollectionOut, CollectionPatch, MembersIn
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Invalid
from peerdp.site.mp import policy_inputs
from peerdp.store.models import Collection, CollectionMember

router = APIRouter(prefix="/collections", tags=["collections"])


def _clean(names: list[str]) -> list[str]:
    cleaned = sorted({n.strip() for n in names})
    bad = [n for n in cleaned if not n or len(n) > 200 or any(ord(c) < 32 for c in n)]
    if bad:
        raise Invalid("member names must be 1-200 printable characters")
    return cleaned


@router.get("", response_model=list[CollectionOut])
def list_collections(ctx: SiteContext = Depends(site)) -> list[Collection]:
    with ctx.transaction() as s:
        return list(s.scalars(select(Collection).order_by(Collection.id)))


@router.post("", response_model=CollectionOut, status_code=201)
def create_collection(body: CollectionIn, ctx: SiteContext = Depends(site)) -> Collection:
    with ctx.transaction() as s:
        collection = Collection(name=body.name)
        collection.members = [CollectionMember(machine_name=n) for n in _clean(body.member_names)]
        s.add(collection)
        s.flush()
        ctx.changes.publish(s, members=True, concerns=_machines(collection.member_names))
        return collection


@router.get("/{collection_id}", response_model=CollectionOut)
def get_collection(collection_id: int, ctx: SiteContext = Depends(site)) -> Collection:
    with ctx.transaction() as s:
        return get_or_404(s, Collection, collection_id, "collection")


@router.patch("/{collection_id}", response_model=CollectionOut)
def patch_collection(
    collection_id: int, body: CollectionPatch, ctx: SiteContext = Depends(site)
) -> Collection:
    with ctx.transaction() as s:
        collection = get_or_404(s, Collection, collection_id, "collection")
        changes = body.model_dump(exclude_unset=True)
        before = set(collection.member_names)
        if changes.get("name") is not None:
            collection.name = changes["name"]
        if changes.get("member_names") is not None:
            names = _clean(changes["member_names"])
            collection.members = [CollectionMember(machine_name=n) for n in names]
        s.flush()
        moved = before ^ set(collection.member_names)  # who joined or left
        ctx.changes.publish(s, members=True, concerns=_machines(moved))
        return collection


@router.post("/{collection_id}/members", response_model=CollectionOut)
def add_members(
    collection_id: int, body: MembersIn, ctx: SiteContext = Depends(site)
) -> Collection:
    with ctx.transaction() as s:
        collection = get_or_404(s, Collection, collection_id, "collection")
        held = set(collection.member_names)
        joined = [name for name in dict.fromkeys(_clean(body.member_names)) if name not in held]
        for name in joined:
            collection.members.append(CollectionMember(machine_name=name))
        s.flush()
        ctx.changes.publish(s, members=True, concerns=_machines(joined))
        return collection


@router.delete("/{collection_id}/members/{machine_name}", response_model=CollectionOut)
def remove_member(
    collection_id: int, machine_name: str, ctx: SiteContext = Depends(site)
) -> Collection:
    with ctx.transaction() as s:
        collection = get_or_404(s, Collection, collection_id, "collection")
        kept = [m for m in collection.members if m.machine_name != machine_name]
        if len(kept) == len(collection.members):
            raise Invalid(f"'{machine_name}' is not a member of collection {collection_id}")
        collection.members = kept
        s.flush()
        ctx.changes.publish(s, members=True, concerns=_machines([machine_name]))
        return collection


@router.delete("/{collection_id}", status_code=204)
def delete_collection(collection_id: int, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        s.delete(get_or_404(s, Collection, collection_id, "collection"))
        # Its advertisements and memberships go with it (cascade): its members' policies.
        concerned = [policy_inputs.collection(collection_id)]
        ctx.changes.publish(s, policy=True, members=True, concerns=concerned)


def _machines(names: Iterable[str]) -> list[str]:
    """The policy inputs of machines that joined or left a collection."""
    return [policy_inputs.machine(name) for name in names]

"""The SQL readers of machine policy: what a client must run, what a DP must hold.

A client's advertisements are read per collection (`advertisement_entries`) and shared by
every client of the collection; only an administrator's rerun for one client is applied
per client. The versions, caching and signing are in
policy_service.py; the held long-polls in waiters.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.domain.timestamps import rfc3339
from peerdp.site.context import SiteContext
from peerdp.site.mp.identity import Caller
from peerdp.site.packages import pull_sources
from peerdp.store.models import (
    Advertisement,
    AdvertisementRerun,
    CollectionMember,
    DistributionPoint,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    Program,
)


def advertisement_entries(
    s: Session, collection_ids: Iterable[int] | None
) -> dict[int, list[dict[str, Any]]]:
    """Per collection, its advertisements as a client's policy lists them (reruns for all
    clients included; a rerun for one client is applied on top): of these collections, or
    of every collection (None) at a site server's start. A client's body is the entries
    of its collections, in advertisement order."""
    query = (
        select(Advertisement, Program, PackageVersion)
        .join(Package, Package.id == Advertisement.package_id)
        .join(
            Program,
            (Program.package_id == Advertisement.package_id)
            & (Program.name == Advertisement.program_name),
        )
        .join(
            PackageVersion,
            (PackageVersion.package_id == Package.id)
            & (PackageVersion.source_version == Package.source_version),
        )
        .order_by(Advertisement.id)
    )
    wanted = None if collection_ids is None else sorted(collection_ids)
    if wanted is not None:
        query = query.where(Advertisement.collection_id.in_(wanted))
    rows = s.execute(query).all()
    reruns = _reruns_for_all(s, [adv.id for adv, _, _ in rows])
    found: dict[int, list[dict[str, Any]]] = {c: [] for c in wanted or ()}
    for adv, program, version in rows:
        found.setdefault(adv.collection_id, []).append(
            {
                "id": adv.id,
                "name": adv.name,
                "package_id": adv.package_id,
                "source_version": version.source_version,
                "manifest_digest": version.manifest_digest,
                "program": {
                    "name": program.name,
                    "command_line": program.command_line,
                    "timeout_s": program.timeout_s,
                    "success_exit_codes": list(program.success_exit_codes),
                },
                "rerun": reruns.get(adv.id, 0),
                "schedule": {
                    "available_at": rfc3339(adv.available_at),
                    "mandatory_at": rfc3339(adv.mandatory_at) if adv.mandatory_at else None,
                },
                "flags": {
                    "protected_only": adv.protected_only,
                    "on_fast": adv.on_fast,
                    "on_slow": adv.on_slow,
                    "allow_remote": adv.allow_remote,
                },
            }
        )
    return found


# One client's own reads, built once: building a statement costs more than running it.
_MEMBERSHIPS = select(CollectionMember.collection_id).where(
    CollectionMember.machine_name == bindparam("name")
)
_OWN_RERUNS = (
    select(AdvertisementRerun.advertisement_id, func.max(AdvertisementRerun.id))
    .where(AdvertisementRerun.client_name == bindparam("name"))
    .group_by(AdvertisementRerun.advertisement_id)
)


def memberships(s: Session, name: str) -> frozenset[int]:
    """The collections a machine is a member of."""
    return frozenset(s.connection().execute(_MEMBERSHIPS, {"name": name}).scalars())


def own_reruns(s: Session, name: str) -> dict[int, int]:
    """Per advertisement, the latest rerun for this client alone."""
    rows = s.connection().execute(_OWN_RERUNS, {"name": name})
    return {advertisement_id: rerun for advertisement_id, rerun in rows}


def all_memberships(s: Session) -> dict[str, frozenset[int]]:
    """Every machine's collections, in one read (a site server's start)."""
    found: dict[str, set[int]] = {}
    for collection_id, name in s.execute(
        select(CollectionMember.collection_id, CollectionMember.machine_name)
    ):
        found.setdefault(name, set()).add(collection_id)
    # Machines in the same collections share one frozenset (memory, and the body cache key).
    shared: dict[frozenset[int], frozenset[int]] = {}
    return {name: shared.setdefault(frozenset(ids), frozenset(ids)) for name, ids in found.items()}


def _reruns_for_all(s: Session, advertisement_ids: list[int]) -> dict[int, int]:
    """Per advertisement, its latest rerun for every client."""
    if not advertisement_ids:
        return {}
    query = (
        select(AdvertisementRerun.advertisement_id, func.max(AdvertisementRerun.id))
        .where(AdvertisementRerun.client_name.is_(None))
        .group_by(AdvertisementRerun.advertisement_id)
    )
    if len(advertisement_ids) < 1000:  # else all of them: no list of thousands of IDs
        query = query.where(AdvertisementRerun.advertisement_id.in_(advertisement_ids))
    rows = s.execute(query).all()
    return {advertisement_id: rerun for advertisement_id, rerun in rows}


def all_own_reruns(s: Session) -> dict[str, dict[int, int]]:
    """Per client, per advertisement, its latest rerun for that client alone: every
    client's, at a site server's start."""
    query = (
        select(
            AdvertisementRerun.client_name,
            AdvertisementRerun.advertisement_id,
            func.max(AdvertisementRerun.id),
        )
        .where(AdvertisementRerun.client_name.is_not(None))
        .group_by(AdvertisementRerun.client_name, AdvertisementRerun.advertisement_id)
    )
    found: dict[str, dict[int, int]] = {}
    for client_name, advertisement_id, rerun in s.execute(query):
        found.setdefault(client_name or "", {})[advertisement_id] = rerun
    return found


def with_reruns(body: dict[str, Any], reruns: dict[int, int]) -> dict[str, Any]:
    """A shared body with one client's own reruns applied (the latest rerun counts)."""
    return {
        **body,
        "advertisements": [
            {**entry, "rerun": max(entry["rerun"], reruns[entry["id"]])}
            if entry["id"] in reruns
            else entry
            for entry in body["advertisements"]
        ],
    }


def dp_body(s: Session, caller: Caller) -> dict[str, Any]:
    """The packages a DP must hold (with where to pull them from) and those to delete."""
    assert caller.dp_id is not None
    dp = s.get(DistributionPoint, caller.dp_id)
    if dp is None:
        return {"packages": [], "remove": []}
    rows = s.execute(
        select(PackageDistributionPoint, Package, PackageVersion)
        .join(Package, Package.id == PackageDistributionPoint.package_id)
        .join(
            PackageVersion,
            (PackageVersion.package_id == PackageDistributionPoint.package_id)
            & (PackageVersion.source_version == PackageDistributionPoint.source_version),
        )
        .where(PackageDistributionPoint.dp_id == dp.id)
        .order_by(Package.id)
    ).all()
    packages, remove = [], []
    for row, package, version in rows:
        if row.state in dp_states.REMOVING:
            remove.append({"id": package.id, "source_version": row.source_version})
            continue
        packages.append(
            {
                "id": package.id,
                "name": package.name,
                "source_version": version.source_version,
                "manifest_digest": version.manifest_digest,
                "manifest": version.manifest,
                "auto_download": package.auto_download_branch,
                "origin": row.origin,
                "state": row.state,
                "sources": sources(s, dp, package.id, version.source_version),
            }
        )
    # The site's transfer limit for this DP (None: the kind's default); the DP's own
    # --max-transfers overrides it. A change reaches a running DP through its long-poll.
    return {
        "dp_id": dp.id,
        "packages": packages,
        "remove": remove,
        "max_transfers": dp.max_transfers,
    }


def sources(s: Session, dp: DistributionPoint, package_id: str, version: int) -> list[Any]:
    """BITS-enabled standard DPs of the DP's site holding this version, by name."""
    query = (
        pull_sources(package_id, version)
        .where(DistributionPoint.site_code == dp.site_code, DistributionPoint.id != dp.id)
        .order_by(DistributionPoint.name)
    )
    return [{"dp_id": d.id, "name": d.name, "url": d.url} for d in s.scalars(query)]


def with_access_tokens(ctx: SiteContext, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Each package gets a token the DP shows its sources; outside the digest, as it expires."""
    body = {**body, "packages": [dict(package) for package in body.get("packages", [])]}
    for package in body["packages"]:
        package["access_token"] = ctx.key.access_token(
            package["id"], package["source_version"], caller.name, ctx.settings.access_token_ttl_s
        )
    return body

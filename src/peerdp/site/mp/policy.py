"""Machine policy: what a client must run, what a DP must hold; signed and versioned.

A machine's policy version grows only when the policy's content changes (its digest
is kept per machine), so `since=N` long-polls wake exactly when something changed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from peerdp.domain import dp_states
from peerdp.domain.timestamps import rfc3339
from peerdp.security.signing import json_digest
from peerdp.site.context import SiteContext
from peerdp.site.metrics import POLICY_WAITING
from peerdp.site.mp import polling
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
    PolicyVersion,
    Program,
    utcnow,
)


def client_body(s: Session, caller: Caller) -> dict[str, Any]:
    rows = s.execute(
        select(Advertisement, Program, PackageVersion)
        .join(CollectionMember, CollectionMember.collection_id == Advertisement.collection_id)
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
        .where(CollectionMember.machine_name == caller.name)
        .order_by(Advertisement.id)
    ).all()
    reruns = _reruns(s, caller.name, [adv.id for adv, _, _ in rows])
    return {
        "advertisements": [
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
            for adv, program, version in rows
        ],
        "polling": polling.for_clients(s),  # how the client fetches policy (mp/polling.py)
    }


def _reruns(s: Session, name: str, advertisement_ids: list[int]) -> dict[int, int]:
    """Per advertisement, the latest rerun that concerns this client (for all, or it)."""
    if not advertisement_ids:
        return {}
    rows = s.execute(
        select(AdvertisementRerun.advertisement_id, func.max(AdvertisementRerun.id))
        .where(
            AdvertisementRerun.advertisement_id.in_(advertisement_ids),
            AdvertisementRerun.client_name.is_(None) | (AdvertisementRerun.client_name == name),
        )
        .group_by(AdvertisementRerun.advertisement_id)
    ).all()
    return {advertisement_id: rerun for advertisement_id, rerun in rows}


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


def current(ctx: SiteContext, caller: Caller) -> dict[str, Any]:
    """The caller's signed policy, bumping its version if the content changed."""
    with ctx.transaction() as s:
        body = client_body(s, caller) if caller.role == "client" else dp_body(s, caller)
        digest = json_digest(body)
        stored = s.get(PolicyVersion, caller.machine_id)
        if stored is None:
            stored = PolicyVersion(machine_id=caller.machine_id, version=1, digest=digest)
            s.add(stored)
        elif stored.digest != digest:
            stored.version += 1
            stored.digest = digest
        version = stored.version
    if caller.role != "client":
        _add_access_tokens(ctx, caller, body)
    policy = {
        "machine_id": caller.machine_id,
        "name": caller.name,
        "role": caller.role,
        "site_code": ctx.site_code,
        "version": version,
        "generated_at": rfc3339(utcnow()),
        **body,
    }
    return {**policy, "signature": ctx.key.sign_json(policy)}


def _add_access_tokens(ctx: SiteContext, caller: Caller, body: dict[str, Any]) -> None:
    """Each package gets a token the DP shows its sources; outside the digest, as it expires."""
    for package in body.get("packages", []):
        package["access_token"] = ctx.key.access_token(
            package["id"], package["source_version"], caller.name, ctx.settings.access_token_ttl_s
        )


async def wait_for_change(
    ctx: SiteContext, caller: Caller, since: int | None, wait_s: float
) -> dict[str, Any]:
    """The policy now, or as soon as its version passes `since` (at most `wait_s`)."""
    deadline = time.monotonic() + min(wait_s, ctx.settings.policy_wait_max_s)
    while True:
        generation = ctx.changes.generation
        policy = await run_in_threadpool(current, ctx, caller)
        remaining = deadline - time.monotonic()
        done = since is None or policy["version"] > since or remaining <= 0
        if done or ctx.changes.stopping:
            return policy
        with POLICY_WAITING.track_inprogress():
            await ctx.changes.wait(generation, remaining)
        await asyncio.sleep(0)

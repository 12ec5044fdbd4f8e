"""The MP's driver of the content-location rule: facts from the database in, answer out.

Boundaries and DPs change rarely, so they are held as a prebuilt SiteView and rebuilt
only when the change bus says the topology changed; each request reads its package's
DP list fresh, so an answer never trails a DP's report.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain import location as rule
from peerdp.domain.boundaries import Boundary as BoundaryFact
from peerdp.site import provisioning
from peerdp.site.context import SiteContext
from peerdp.site.errors import Conflict, Invalid, NotFound
from peerdp.site.status import record
from peerdp.store.models import (
    Advertisement,
    Boundary,
    CollectionMember,
    DistributionPoint,
    Package,
    PackageDistributionPoint,
)


@dataclass(frozen=True)
class Request:
    client_name: str
    advertisement_id: int
    package_id: str
    source_version: int
    ip_addresses: tuple[str, ...]
    ad_site: str | None


@dataclass(frozen=True)
class Outcome:
    decision: rule.LocationDecision
    # DP id -> carried out ("added") or not; what this request did about on-demand.
    provisioned: dict[int, str]

    @property
    def reason(self) -> str | None:
        reason = self.decision.reason
        if reason == "on_demand_triggered" and "added" not in self.provisioned.values():
            # Another request won the race for every DP: it is in progress, not triggered here.
            return "on_demand_in_progress"
        return reason


class LocationService:
    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self._view: rule.SiteView | None = None
        self._generation = -1
        self._lock = threading.Lock()

    def view(self) -> rule.SiteView:
        generation = self.ctx.changes.topology_generation
        view = self._view
        if view is not None and generation == self._generation:
            return view
        with self._lock:
            if self._view is None or self._generation != generation:
                with self.ctx.transaction() as s:
                    self._view = load_view(s)
                self._generation = generation
            return self._view

    def locate(self, request: Request, *, explain: bool = False) -> Outcome:
        view = self.view()
        with self.ctx.transaction() as s:
            adv, package = _advertisement(s, request)
            targeted = _targets(s, adv, request.client_name)
            rows = _package_rows(s, request.package_id)
            decision = rule.locate(
                view.with_package_rows(package.id, rows),
                rule.Client(request.client_name, request.ip_addresses, request.ad_site),
                rule.Advertisement(
                    str(adv.id),
                    adv.package_id,
                    adv.protected_only,
                    adv.on_slow,  # type: ignore[arg-type]
                    adv.allow_remote,
                ),
                rule.Package(package.id, request.source_version, package.on_demand),
                targeted=targeted,
                explain=explain,
            )
            if explain:
                return Outcome(decision, {})
            outcome = Outcome(decision, self._act(s, request, decision))
            _record_answer(self.ctx, s, request, outcome)
            return outcome

    def _act(self, s: Session, request: Request, decision: rule.LocationDecision) -> dict[int, str]:
        done: dict[int, str] = {}
        args = (request.package_id, request.source_version)
        for action in decision.on_demand:
            if action.action == "add":
                added = provisioning.provision(
                    self.ctx, s, *args, action.dp_id, request.client_name
                )
                done[action.dp_id] = "added" if added else "already_listed"
            elif action.action == "delayed":
                provisioning.delay(self.ctx, s, *args, action.dp_id, request.client_name)
                done[action.dp_id] = "delayed"
            else:
                done[action.dp_id] = "already_listed"
        return done


def load_view(s: Session) -> rule.SiteView:
    boundaries = [
        BoundaryFact(b.id, b.name, b.type, b.value, b.connection)  # type: ignore[arg-type]
        for b in s.scalars(select(Boundary))
    ]
    dps = [
        rule.DistributionPoint(
            id=dp.id,
            name=dp.name,
            url=dp.url or "",
            kind=dp.kind,  # type: ignore[arg-type]
            bits_enabled=dp.bits_enabled,
            site_code=dp.site_code,
            protected_boundary_ids=frozenset(dp.protected_boundary_ids),
            ip_addresses=tuple(dp.ip_addresses),
            ad_site=dp.ad_site,
        )
        for dp in s.scalars(select(DistributionPoint))
    ]
    return rule.SiteView(boundaries, dps, {})


def _advertisement(s: Session, request: Request) -> tuple[Advertisement, Package]:
    adv = s.get(Advertisement, request.advertisement_id)
    if adv is None:
        raise NotFound(f"advertisement {request.advertisement_id} does not exist")
    if adv.package_id != request.package_id:
        raise Invalid(
            f"advertisement {adv.id} is for package {adv.package_id}, not {request.package_id}"
        )
    package = s.get(Package, adv.package_id)
    assert package is not None  # foreign key
    if request.source_version != package.source_version:
        raise Conflict(
            f"package {package.id} is at source version {package.source_version}, "
            f"not {request.source_version}: refresh your policy"
        )
    return adv, package


def _targets(s: Session, adv: Advertisement, client_name: str) -> bool:
    member = s.get(CollectionMember, (adv.collection_id, client_name))
    return member is not None


def _package_rows(s: Session, package_id: str) -> dict[int, rule.PackageDPRow]:
    query = select(
        PackageDistributionPoint.dp_id,
        PackageDistributionPoint.state,
        PackageDistributionPoint.source_version,
    ).where(PackageDistributionPoint.package_id == package_id)
    return {
        dp_id: rule.PackageDPRow(dp_id, state, version)
        for dp_id, state, version in s.execute(query)
    }


def describe(outcome: Outcome) -> str:
    dps = outcome.decision.distribution_points
    if dps:
        return f"answered with {len(dps)} DP(s): " + ", ".join(r.dp.name for r in dps)
    check = outcome.decision.on_demand_check
    why = ""
    if check is not None and not check.fires:
        why = "; on-demand not possible: " + ", ".join(check.failed_conditions)
    return f"answered with no DP: {outcome.reason}{why}"


def _record_answer(ctx: SiteContext, s: Session, request: Request, outcome: Outcome) -> None:
    record(
        s,
        component="mp",
        source=ctx.site_code,
        type="content_location",
        severity="info" if outcome.decision.distribution_points else "warning",
        client_name=request.client_name,
        advertisement_id=request.advertisement_id,
        package_id=request.package_id,
        source_version=request.source_version,
        state=outcome.reason,
        detail=describe(outcome),
    )

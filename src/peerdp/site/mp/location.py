"""The MP's driver of the content-location rule: facts from the database in, answer out.

The hot path reads nothing from the database when nothing changed: boundaries and DPs
are held as a prebuilt SiteView (rebuilt when the topology changes), and the facts of
advertisements, packages, collection membership and DP lists are cached until the
change bus reports any change. When the rule says on-demand provisioning is due, the
decision is taken again from fresh facts inside the write transaction, so a stale
cache never records a wrong delay or a second addition.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.domain import location as rule
from peerdp.domain.boundaries import placement
from peerdp.site import provisioning
from peerdp.site.context import SiteContext
from peerdp.site.errors import Conflict, Invalid, NotFound
from peerdp.site.mp.cache import CACHE_READS, FactCache
from peerdp.site.mp.facts import (
    AdvertisementFacts,
    advertisement_facts,
    collection_members,
    load_view,
    package_rows,
    targets,
)
from peerdp.site.status_batch import Sightings, StatusBatcher
from peerdp.store.models import Advertisement

T = TypeVar("T")

ANSWERS = Counter(
    "peerdp_mp_location_answers",
    "Content-location answers, by reason ('listed' when DPs were returned)",
    ["reason"],
)


@functools.cache
def _answer_counter(reason: str) -> Any:
    """The answer counter's child for `reason` (looking a child up takes a lock and costs
    more than the increment, on the MP's busiest path)."""
    return ANSWERS.labels(reason)


@dataclass(frozen=True)
class Request:
    client_name: str
    advertisement_id: int
    package_id: str
    source_version: int
    ip_addresses: tuple[str, ...]
    ad_site: str | None
    # The address the request came from, as the MP saw the connection (None: not a request).
    peer_address: str | None = None
    # What places the client in boundaries: "reported" (the two fields above it) or "peer".
    locate_by: str = "reported"

    def placement(self) -> tuple[tuple[str, ...], str | None]:
        """The addresses and AD site the rule places the client by."""
        return placement(self.ip_addresses, self.ad_site, self.peer_address, self.locate_by)


@dataclass(frozen=True)
class Facts:
    """What one decision needs besides the site view."""

    advertisement: AdvertisementFacts
    targeted: bool
    rows: dict[int, rule.PackageDPRow]


@dataclass(frozen=True)
class Outcome:
    decision: rule.LocationDecision
    # DP id -> what this request did about on-demand ("added", "already_listed", "delayed").
    provisioned: dict[int, str]


class LocationService:
    def __init__(self, ctx: SiteContext, sightings: Sightings) -> None:
        self.ctx = ctx
        self._view: rule.SiteView | None = None
        self._view_generation = -1
        self._view_lock = threading.Lock()
        changes = ctx.changes
        # Advertisements' facts and DP lists: dropped by any change but a membership or
        # machine one.
        self.facts = FactCache(
            lambda: changes.generation_of("policy") + changes.generation_of("topology"), "facts"
        )
        # Each collection's members, read whole: a deployment wave asks for thousands of
        # clients, each once. Dropped only when a collection's membership changes.
        self.members = FactCache(lambda: changes.generation_of("members"), "members")
        self.answers = StatusBatcher(ctx.db, ctx.changes)
        self.sightings = sightings  # where each client asks from (the MP's, shared)

    def close(self) -> None:
        self.answers.close()

    def view(self) -> rule.SiteView:
        generation = self.ctx.changes.topology_generation
        view = self._view
        if view is not None and generation == self._view_generation:
            return view
        with self._view_lock:
            if self._view is None or self._view_generation != generation:
                with self.ctx.db.reading() as s, _long_lived():
                    self._view = load_view(s)
                CACHE_READS.labels("view").inc()
                self._view_generation = generation
            return self._view

    def locate_cached(self, request: Request) -> Outcome | None:
        """The answer from cached facts alone (no I/O), or None when that cannot be had:
        a fact is not cached, the topology changed, or on-demand provisioning is due."""
        view = self._view
        if view is None or self._view_generation != self.ctx.changes.topology_generation:
            return None
        held, adv = self.facts.peek(("adv", request.advertisement_id))
        if not held or adv.package_id != request.package_id:
            return None
        if request.source_version != adv.package_version:
            return None
        held_members, members = self.members.peek(adv.collection_id)
        held_rows, rows = self.facts.peek(("rows", adv.package_id))
        if not (held_members and held_rows):
            return None
        decision = decide(view, request, Facts(adv, request.client_name in members, rows))
        if decision.on_demand:
            return None
        outcome = Outcome(decision, {})
        self._record_answer(request, outcome)
        return outcome

    def locate(self, request: Request, *, explain: bool = False) -> Outcome:
        """The answer to a content-location request; with `explain`, the answer the MP
        would give now, with its trace, from the database's facts (not the cache, which
        another site-server process's change may not have reached yet), changing nothing."""
        view = self.view()
        if explain:
            with self.ctx.db.reading() as s:
                facts = fresh_facts(s, request)
            return Outcome(decide(view, request, facts, explain=True), {})
        decision = decide(view, request, self._cached_facts(request))
        # On-demand is due: decide again on fresh facts under the write lock, then act.
        outcome = self._provision(view, request) if decision.on_demand else Outcome(decision, {})
        self._record_answer(request, outcome)
        return outcome

    def _cached_facts(self, request: Request) -> Facts:
        adv = self._advertisement(request.advertisement_id)
        check_request(adv, request)
        members = self._members(adv.collection_id)
        return Facts(adv, request.client_name in members, self._rows(adv.package_id))

    def _read(self, load: Callable[[Session], T]) -> Callable[[], T]:
        def run() -> T:
            with self.ctx.db.reading() as s:
                return load(s)

        return run

    def _advertisement(self, advertisement_id: int) -> AdvertisementFacts:
        return self.facts.get(
            ("adv", advertisement_id),
            self._read(lambda s: advertisement_facts(s, advertisement_id)),
        )

    def _members(self, collection_id: int) -> frozenset[str]:
        return self.members.get(
            collection_id, self._read(lambda s: collection_members(s, collection_id))
        )

    def _rows(self, package_id: str) -> dict[int, rule.PackageDPRow]:
        return self.facts.get(
            ("rows", package_id), self._read(lambda s: package_rows(s, package_id))
        )

    def warm(self) -> None:
        """Read what answers need before the first client asks: the view, and every
        advertisement's facts, DP list and collection members. After a restart in the
        middle of a deployment wave, the first answers are then as quick as the rest."""
        self.view()
        with self.ctx.db.reading() as s:
            advertisement_ids = list(s.scalars(select(Advertisement.id)))
        for advertisement_id in advertisement_ids:
            with contextlib.suppress(NotFound):  # deleted meanwhile
                adv = self._advertisement(advertisement_id)
                self._members(adv.collection_id)
                self._rows(adv.package_id)

    def _provision(self, view: rule.SiteView, request: Request) -> Outcome:
        """Decide again on fresh facts under the write lock, then carry out on-demand."""
        with self.ctx.transaction() as s:
            decision = decide(view, request, fresh_facts(s, request, lock=True))
            provisioned = self._act(s, request, decision)
            if "added" not in provisioned.values():
                decision = decision.with_race_lost()
            return Outcome(decision, provisioned)

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

    def _record_answer(self, request: Request, outcome: Outcome) -> None:
        """Record the answer (in a batch): as a status message, and as the client's
        deployment state (its source: the first DP named; its boundary: the first the
        client was placed in)."""
        _answer_counter(outcome.decision.reason or "listed").inc()
        self.sightings.seen(
            request.client_name, request.ip_addresses, request.ad_site, request.peer_address
        )
        decision = outcome.decision
        first = decision.distribution_points[:1]
        boundaries = decision.client_boundaries[:1]
        self.answers.message(
            source_dp_id=first[0].dp.id if first else None,
            boundary_id=boundaries[0].boundary.id if boundaries else None,
            component="mp",
            source=self.ctx.site_code,
            type="content_location",
            severity="info" if outcome.decision.distribution_points else "warning",
            client_name=request.client_name,
            advertisement_id=request.advertisement_id,
            package_id=request.package_id,
            source_version=request.source_version,
            state=outcome.decision.reason,
            detail=rule.describe(outcome.decision),
        )


@contextlib.contextmanager
def _long_lived() -> Iterator[None]:
    """Build something large and long-lived (the view): the cyclic collector is kept off
    meanwhile, as its objects would otherwise set off full passes over the whole heap
    (with 10,000 held long-polls, 0.35 s of a 0.07 s build), and frozen out of its
    passes afterwards, which would otherwise stall answers for tens of milliseconds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def fresh_facts(s: Session, request: Request, *, lock: bool = False) -> Facts:
    """The facts of one request read from the database (`lock`: the package's DP list
    locked for update, to act on on-demand)."""
    adv = advertisement_facts(s, request.advertisement_id)
    check_request(adv, request)
    return Facts(
        adv,
        targets(s, adv.collection_id, request.client_name),
        package_rows(s, adv.package_id, lock=lock),
    )


def decide(
    view: rule.SiteView, request: Request, facts: Facts, *, explain: bool = False
) -> rule.LocationDecision:
    adv = facts.advertisement
    return rule.locate(
        view.with_package_rows(adv.package_id, facts.rows),
        rule.Client(request.client_name, *request.placement()),
        rule.Advertisement(
            str(adv.id),
            adv.package_id,
            adv.protected_only,
            adv.on_slow,  # type: ignore[arg-type]
            adv.allow_remote,
        ),
        rule.Package(adv.package_id, request.source_version, adv.package_on_demand),
        targeted=facts.targeted,
        explain=explain,
    )


def check_request(adv: AdvertisementFacts, request: Request) -> None:
    if adv.package_id != request.package_id:
        raise Invalid(
            f"advertisement {adv.id} is for package {adv.package_id}, not {request.package_id}"
        )
    if request.source_version != adv.package_version:
        raise Conflict(
            f"package {adv.package_id} is at source version {adv.package_version}, "
            f"not {request.source_version}: refresh your policy"
        )

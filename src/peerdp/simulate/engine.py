"""The simulator: the site, its DPs and its clients on a simulated clock.

Events are kept in one heap: a client's attempt, a download round, a flow's completion,
a program's end, a machine learning of a policy change, a DP or link going down or up.
Each client's work follows the agent (`agents/client.py`):

1. it learns of the advertisement with its policy: at once with peerdp's long-poll (a
   change wakes the held request, :data:`NOTIFY_S`), at its next poll with SCCM 2007's
   interval polling (`PolicyPolling.every`, each machine at its own random phase);
2. it asks the MP where the content is: the answer is `peerdp.domain.location.locate`
   on the site's view with the package's DP list as it is now, and on-demand actions are
   carried out as the site does (a row added once, `install_pending`, origin on demand;
   a delayed request recorded once and carried out when a BITS-enabled standard DP of
   the branch DP's site comes to hold the version);
3. an empty answer fails the attempt (`Attempts.after_failure`, kind content); else it
   tries the DPs in the answer's order like `download_package`: a DP that is down or
   unreachable, or busy (at its transfer limit: 503), sends it to the next; when none
   takes it, it tries the list again after the round's backoff (at least the busy DP's
   Retry-After) up to :data:`DOWNLOAD_ROUNDS` rounds, and then the attempt fails;
4. the download is a flow (`network.py`); a cut flow resumes from the next DP in the
   answer with the bytes already held;
5. the program runs for `program_run_s` and fails with `program_failure_rate`
   (kind program); failed attempts are tried again after the retry policy's delay.

A branch DP learns of its assignment with its policy too, pulls the version from a
BITS-enabled standard DP of its site (a flow over the head office's LAN and its branch's
WAN link), and reports it installed; a failed pull is retried after a doubling delay.
Every change of a DP-list row is checked against `dp_states.TRANSITIONS`.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from peerdp.domain import dp_states
from peerdp.domain import location as rule
from peerdp.domain.backoff import backoff_delay
from peerdp.domain.policy_polling import PolicyPolling
from peerdp.domain.programs import Attempts, FailureKind, RetryPolicy
from peerdp.simulate import world as w
from peerdp.simulate.network import Flow, Link, Network
from peerdp.simulate.scenario import FIRST_CLIENT_HOST

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# Long-poll: a change wakes every waiting machine it concerns; their next requests reach
# the site spread over about this long (the site answers its waiters one by one).
NOTIFY_S = 2.0
DOWNLOAD_ROUNDS = 3  # download_package's max_rounds
ROUND_BACKOFF_S = 0.5  # download_package's round_backoff_s
RETRY_AFTER_S = 5.0  # a busy DP's Retry-After, as far as a download honours it

POLICY_MODELS = ("peerdp", "sccm2007")


class SimulationError(RuntimeError):
    """The simulated site did something the real one refuses (a bug, never a scenario)."""


@dataclass(eq=False, slots=True)
class Machine:
    """What a client and a branch DP share: when they next poll (interval polling)."""

    next_poll: float


@dataclass(eq=False, slots=True)
class Job:
    """One client and one advertisement: the agent's state for it."""

    client: rule.Client
    place: int
    adv: w.Advertisement
    machine: Machine
    version: int = -1  # the source version it knows of; -1: none yet
    attempts: Attempts = field(default_factory=Attempts)
    token: int = 0  # scheduled steps carry it: a new version makes them stale
    cached: bool = False
    partial: float = 0.0
    answer: tuple[int, ...] = ()
    round: int = 0
    busy_seen: bool = False
    flow: Flow | None = None
    done_at: float | None = None
    failed: str | None = None
    reason: str = ""  # the last failed attempt's
    received: dict[str, float] = field(default_factory=dict)  # bytes by source
    location_requests: int = 0


@dataclass(eq=False, slots=True)
class Pull:
    version: int
    attempts: int = 0
    partial: float = 0.0
    flow: Flow | None = None
    source: DPNode | None = None


@dataclass(eq=False, slots=True)
class DPNode:
    dp: w.DP
    lan: Link
    machine: Machine
    up: bool = True
    active: int = 0
    peak: int = 0
    serving: set[Flow] = field(default_factory=set)
    pulls: dict[str, Pull] = field(default_factory=dict)
    pulled: Counter[str] = field(default_factory=Counter)  # package id -> pulls completed
    pulled_bytes: float = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened, for a trace (tests, and reading a small scenario's run)."""

    at: float
    who: str  # a client's or a DP's name
    what: str  # located, failed, on_demand_added, on_demand_delayed, pull_started, ...
    detail: str = ""


class Engine:
    def __init__(self, world: w.World, *, policy: str | None = None, trace: bool = False) -> None:
        s = world.scenario
        self.world = world
        self.model = policy or s.clients.policy
        if self.model not in POLICY_MODELS:
            raise ValueError(f"unknown policy model {self.model!r}")
        self.rng = random.Random(s.seed)
        self.polling = (
            PolicyPolling.every(int(s.clients.poll_interval_s), int(s.clients.randomise_s))
            if self.model == "sccm2007"
            else PolicyPolling()
        )
        self.retry = RetryPolicy(
            s.clients.retry_interval_s,
            s.clients.max_retry_interval_s,
            s.clients.program_attempts,
            s.clients.content_attempts,
        )
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[Any, Any], None], Any, Any]] = []
        self._seq = 0
        self.net = Network(quantum_s=s.reflow_quantum_s)
        self._tick_at: float | None = None
        self.lan = [self.net.link(f"{p.name} LAN", p.lan_bps) for p in world.places]
        self.wan: list[Link | None] = [
            self.net.link(
                f"{p.name} WAN", p.wan.mbps * w.MBIT, wan=True, latency=p.wan.latency_ms / 1000
            )
            if p.wan
            else None
            for p in world.places
        ]
        self.dps = {dp.rule.id: DPNode(dp, self.lan[dp.place], self._machine()) for dp in world.dps}
        self._pull_capable = sorted(
            (
                n
                for n in self.dps.values()
                if n.dp.rule.kind == "standard" and n.dp.rule.bits_enabled
            ),
            key=lambda n: n.dp.rule.name,
        )
        self.view = rule.SiteView(world.boundaries, (dp.rule for dp in world.dps), {})
        self.rows: dict[str, dict[int, rule.PackageDPRow]] = {p.id: {} for p in world.packages}
        self._snapshots: dict[str, Mapping[int, rule.PackageDPRow]] = {}
        self.version = {p.id: 1 for p in world.packages}
        self.packages = {p.id: p for p in world.packages}
        self._rule_packages: dict[tuple[str, int], rule.Package] = {}
        self.delayed: dict[tuple[str, int, int], float] = {}  # (package, version, dp) -> since
        self.on_demand: list[tuple[float, str, int, int]] = []  # (t, package, version, dp)
        self.mp: Counter[int] = Counter()  # MP requests per second of simulated time
        self.mp_kinds: Counter[str] = Counter()
        self.trace: list[Step] | None = [] if trace else None
        self.jobs = self._jobs()
        self._schedule_world()

    # -- the clock ----------------------------------------------------------------------

    def at(self, t: float, fn: Callable[[Any, Any], None], a: Any = None, b: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t if t > self.now else self.now, self._seq, fn, a, b))

    @property
    def finished(self) -> bool:
        """Nothing is left to happen."""
        return not self._heap

    def run(self, until: float | None = None) -> Engine:
        """Run until nothing is left to happen or the scenario's duration is reached (or
        `until`, to look at the site part way; call again to go on)."""
        end = self.world.scenario.duration_s
        if until is not None:
            end = min(end, until)
        # Millions of short-lived events and no garbage cycles worth finding while it
        # runs: the cyclic collector's passes would cost a fifth of the time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._loop(end)
        finally:
            if collecting:
                gc.enable()
        return self

    def _loop(self, end: float) -> None:
        heap, net = self._heap, self.net
        while heap:
            if heap[0][0] > end:
                self.now = end
                break
            t, _, fn, a, b = heapq.heappop(heap)
            self.now = t
            fn(a, b)
            if net.dirty and (not heap or heap[0][0] > t):
                self._reflow(False)

    def _reflow(self, tick: bool) -> None:
        net, now = self.net, self.now
        for flow in net.reflow(now, tick=tick):
            if flow.rate > 0:
                self.at(now + flow.remaining / flow.rate, self._flow_due, flow, flow.token)
        if net.held and self._tick_at is None:
            self._tick_at = net.next_tick(now)
            self.at(self._tick_at, self._tick)

    def _tick(self, _: Any, __: Any) -> None:
        self._tick_at = None
        self._reflow(True)

    def _machine(self) -> Machine:
        """A machine's first poll falls at a random point of its interval."""
        interval = float(self.polling.interval_s or 0)
        return Machine(self.rng.uniform(0.0, interval))

    def learn_at(self, machine: Machine) -> float:
        """When a machine learns of a policy change made now."""
        if not self.polling.by_interval:
            return self.now + self.rng.uniform(0.0, NOTIFY_S)
        while machine.next_poll <= self.now:
            machine.next_poll += self.polling.next_poll_s(self.rng)
        return machine.next_poll

    def note(self, who: str, what: str, detail: str = "") -> None:
        if self.trace is not None:
            self.trace.append(Step(self.now, who, what, detail))

    def count_mp(self, kind: str) -> None:
        self.mp[int(self.now)] += 1
        self.mp_kinds[kind] += 1

    # -- the world ----------------------------------------------------------------------

    def _jobs(self) -> list[Job]:
        jobs = []
        site_places = self.world.places
        for adv in self.world.advertisements:
            for place in site_places:
                if adv.places is not None and place.index not in adv.places:
                    continue
                for n in range(place.clients):
                    name = f"{place.name}-PC{n + 1:03d}"
                    client = rule.Client(name, (place.host(FIRST_CLIENT_HOST + n),), place.ad_site)
                    jobs.append(Job(client, place.index, adv, self._machine()))
        return jobs

    def _schedule_world(self) -> None:
        for package in self.world.packages:
            self.at(package.staged_at, self._stage, package, 1)
        for job in self.jobs:
            self.at(job.adv.available_at, self._advertised, job)
        for down in self.world.dp_down:
            for dp_id in down.dp_ids:
                self.at(down.window.from_s, self._dp_down, self.dps[dp_id])
                self.at(down.window.until_s, self._dp_up, self.dps[dp_id])
        cuts = [(c.place, c.window) for c in self.world.link_cuts]
        cuts += [(p.index, window) for p in self.world.places if p.wan for window in p.wan.outages]
        for place, window in cuts:
            self.at(window.from_s, self._link_down, place)
            self.at(window.until_s, self._link_up, place)
        for new in self.world.new_versions:
            self.at(new.at_s, self._new_version, new.package)

    def _advertised(self, job: Job, _: Any) -> None:
        self.at(self.learn_at(job.machine), self._policy, job, None)

    # -- the DP list ---------------------------------------------------------------------

    def move(self, package_id: str, dp_id: int, state: str, version: int) -> None:
        """A row of a package's DP list changes, as the transition table allows."""
        rows = self.rows[package_id]
        row = rows.get(dp_id)
        current = row.state if row is not None else None
        # A pending row given a newer version stays pending: the table has no such move.
        renewed = current == state and row is not None and row.source_version != version
        if not dp_states.can_move(current, state) and not renewed:
            raise SimulationError(dp_states.explain_refusal(current, state))
        rows[dp_id] = rule.PackageDPRow(dp_id, state, version)
        self._snapshots.pop(package_id, None)

    def state_of(self, package_id: str, dp_id: int) -> rule.PackageDPRow | None:
        return self.rows[package_id].get(dp_id)

    def _view_for(self, package_id: str) -> rule.SiteView:
        snapshot = self._snapshots.get(package_id)
        if snapshot is None:
            snapshot = self._snapshots[package_id] = dict(self.rows[package_id])
        return self.view.with_package_rows(package_id, snapshot)

    def _stage(self, package: w.Package, _: Any) -> None:
        """The distribution manager's push to the standard DPs the package is staged on."""
        version = self.version[package.id]
        for dp_id in package.staged_on:
            row = self.state_of(package.id, dp_id)
            if row is None or row.state != dp_states.INSTALL_PENDING:
                self.move(package.id, dp_id, dp_states.INSTALL_PENDING, version)
            self.move(package.id, dp_id, dp_states.INSTALLED, version)
            self._standard_installed(package.id, version, self.dps[dp_id])

    def _standard_installed(self, package_id: str, version: int, node: DPNode) -> None:
        """A standard DP holds the version: delayed requests of its site go ahead, and
        branch DPs waiting for a source hear of it."""
        if not node.dp.rule.bits_enabled:
            return
        site = node.dp.rule.site_code
        for key in [k for k in self.delayed if k[0] == package_id and k[1] == version]:
            branch = self.dps[key[2]]
            if branch.dp.rule.site_code == site:
                del self.delayed[key]
                self._provision(package_id, version, branch)
        for branch in self.dps.values():
            row = self.state_of(package_id, branch.dp.rule.id)
            if branch.dp.rule.kind == "branch" and row and row.state == dp_states.INSTALL_RETRYING:
                self.at(self.learn_at(branch.machine), self._dp_learns, branch, package_id)

    def _provision(self, package_id: str, version: int, branch: DPNode) -> None:
        dp_id = branch.dp.rule.id
        row = self.state_of(package_id, dp_id)
        if row is not None and row.state not in dp_states.READDABLE:
            return  # exactly once: already on the list
        self.move(package_id, dp_id, dp_states.INSTALL_PENDING, version)
        self.on_demand.append((self.now, package_id, version, dp_id))
        self.note(branch.dp.rule.name, "on_demand_added", f"{package_id} v{version}")
        self.at(self.learn_at(branch.machine), self._dp_learns, branch, package_id)

    # -- a client ------------------------------------------------------------------------

    def _policy(self, job: Job, _: Any) -> None:
        """The client's policy names the advertisement at the package's current version."""
        version = self.version[job.adv.package.id]
        if job.version == version:
            return
        self.count_mp("policy")
        if job.flow is not None:  # a download of an older version: dropped
            self._end_download(job)
        job.version, job.token = version, job.token + 1
        job.attempts, job.cached, job.partial, job.received = Attempts(), False, 0.0, {}
        job.done_at, job.failed = None, None
        self.count_mp("status")  # advertisement_received
        self._attempt(job, job.token)

    def _attempt(self, job: Job, token: int) -> None:
        if token != job.token or job.done_at is not None or job.failed is not None:
            return
        if job.cached:
            self._run_program(job)
            return
        wan = self.wan[job.place]
        if wan is not None and not wan.up:
            self._fail(job, "content", "content_location_failed: the MP cannot be reached")
            return
        self.count_mp("location")
        job.location_requests += 1
        package = job.adv.package
        decision = rule.locate(
            self._view_for(package.id),
            job.client,
            job.adv.rule,
            self._package(package, job.version),
        )
        if self.trace is not None:
            self.note(job.client.name, "located", rule.describe(decision))
        if decision.on_demand:
            self._on_demand(decision, job)
        if not decision.distribution_points:
            self._fail(job, "content", str(decision.reason))
            return
        job.answer = tuple(r.dp.id for r in decision.distribution_points)
        job.round, job.busy_seen = 0, False
        self._try_sources(job, 0)

    def _package(self, package: w.Package, version: int) -> rule.Package:
        made = self._rule_packages.get((package.id, version))
        if made is None:
            made = self._rule_packages[package.id, version] = rule.Package(
                package.id, version, package.on_demand
            )
        return made

    def _on_demand(self, decision: rule.LocationDecision, job: Job) -> None:
        package_id, version = job.adv.package.id, job.version
        for action in decision.on_demand:
            if action.action == "add":
                self._provision(package_id, version, self.dps[action.dp_id])
            elif action.action == "delayed":
                key = (package_id, version, action.dp_id)
                if key not in self.delayed:
                    self.delayed[key] = self.now
                    self.note(self.dps[action.dp_id].dp.rule.name, "on_demand_delayed")

    def _try_sources(self, job: Job, start: int) -> None:
        for index in range(start, len(job.answer)):
            node = self.dps[job.answer[index]]
            if self._download_from(job, node, index):
                return
        job.round += 1
        if job.round >= DOWNLOAD_ROUNDS:
            why = "every DP busy (503)" if job.busy_seen else "no DP could be reached"
            self._fail(job, "content", f"content_download_failed: {why}")
            return
        wait = backoff_delay(job.round, ROUND_BACKOFF_S, cap_s=10.0)
        if job.busy_seen:
            wait = max(wait, RETRY_AFTER_S)
        self.at(self.now + wait, self._next_round, job, job.token)

    def _next_round(self, job: Job, token: int) -> None:
        if token == job.token:
            self._try_sources(job, 0)

    def _download_from(self, job: Job, node: DPNode, index: int) -> bool:
        if not node.up:
            return False
        limit = node.dp.max_transfers
        if limit is not None and node.active >= limit:
            job.busy_seen = True
            return False
        path = self._path(node.dp.place, job.place)
        if not all(link.up for link in path):
            return False
        package = job.adv.package
        node.active += 1
        node.peak = max(node.peak, node.active)

        def done(flow: Flow) -> None:
            self._downloaded(job, node, flow)

        def cut(flow: Flow) -> None:
            self._download_cut(job, node, flow, index)

        flow = Flow(path, package.size - job.partial, node.dp.rule.name, done, cut)
        self.note(job.client.name, "download_started", node.dp.rule.name)
        job.flow = flow
        node.serving.add(flow)
        self.net.start(flow, self.now)
        return True

    def _path(self, source: int, client: int) -> tuple[Link, ...]:
        """The links from a DP's location to a machine's: the DP's LAN, then the WAN
        links of the branches at either end (the head office is the hub)."""
        if source == client:
            return (self.lan[source],)
        wans = tuple(link for link in (self.wan[source], self.wan[client]) if link is not None)
        return (self.lan[source], *wans)

    def _downloaded(self, job: Job, node: DPNode, flow: Flow) -> None:
        self._end_download(job, node, flow)
        job.cached, job.partial = True, 0.0
        # One request per file, each a round trip over the path, on top of the bytes.
        setup = job.adv.package.files * 2 * self._latency(flow.path)
        self.at(self.now + setup, self._program_starts, job, job.token)

    def _download_cut(self, job: Job, node: DPNode, flow: Flow, index: int) -> None:
        self._end_download(job, node, flow)
        job.partial = job.adv.package.size - flow.remaining
        self._try_sources(job, index + 1)

    def _end_download(self, job: Job, node: DPNode | None = None, flow: Flow | None = None) -> None:
        flow = flow or job.flow
        assert flow is not None
        if node is None:
            node = next(n for n in self.dps.values() if flow in n.serving)
            self.net.stop(flow, self.now)
        node.active -= 1
        node.serving.discard(flow)
        job.flow = None
        if flow.done_bytes:
            job.received[flow.source] = job.received.get(flow.source, 0.0) + flow.done_bytes

    def _latency(self, path: tuple[Link, ...]) -> float:
        return sum(link.latency for link in path)

    def _program_starts(self, job: Job, token: int) -> None:
        if token == job.token:
            self._run_program(job)

    def _run_program(self, job: Job) -> None:
        self.count_mp("status")  # program_started
        self.at(
            self.now + self.world.scenario.clients.program_run_s, self._program_ends, job, job.token
        )

    def _program_ends(self, job: Job, token: int) -> None:
        if token != job.token:
            return
        self.count_mp("status")
        if self.rng.random() < self.world.scenario.clients.program_failure_rate:
            self._fail(job, "program", "program_failed: exit code 1")
            return
        job.done_at = self.now
        self.note(job.client.name, "succeeded")

    def _fail(self, job: Job, kind: FailureKind, reason: str) -> None:
        self.count_mp("status")
        job.reason = reason
        self.note(job.client.name, "attempt_failed", reason)
        job.attempts = job.attempts.after_failure(
            kind, reason, EPOCH + timedelta(seconds=self.now), self.retry
        )
        if job.attempts.failed is not None:
            job.failed = reason
            return
        assert job.attempts.next_attempt_at is not None
        due = (job.attempts.next_attempt_at - EPOCH).total_seconds()
        self.at(due, self._attempt, job, job.token)

    def _flow_due(self, flow: Flow, token: int) -> None:
        if token != flow.token or not flow.active:
            return
        self.net.stop(flow, self.now)
        flow.remaining = 0.0
        flow.on_done(flow)

    # -- a branch DP --------------------------------------------------------------------

    def _dp_learns(self, node: DPNode, package_id: str) -> None:
        """The branch DP's policy says it must hold the package: pull it."""
        dp_id = node.dp.rule.id
        row = self.state_of(package_id, dp_id)
        if row is None or not dp_states.is_installing(row.state) or not node.up:
            return
        wan = self.wan[node.dp.place]
        if wan is not None and not wan.up:
            return  # it cannot reach the site; it asks again when the link is back
        pull = node.pulls.get(package_id)
        if pull is not None and pull.flow is not None:
            return
        if pull is None or pull.version != row.source_version:
            pull = node.pulls[package_id] = Pull(row.source_version)
        sources = self._pull_sources(package_id, row.source_version, node)
        if not sources:
            if row.state != dp_states.INSTALL_RETRYING:
                self.move(package_id, dp_id, dp_states.INSTALL_RETRYING, row.source_version)
            return  # waiting for a source: a standard DP's installation wakes it
        for source in sources:
            path = self._path(source.dp.place, node.dp.place)
            limit = source.dp.max_transfers
            busy = limit is not None and source.active >= limit  # 503: the next source
            if source.up and not busy and all(link.up for link in path):
                self._start_pull(node, source, pull, package_id, path)
                return
        self._pull_failed(node, package_id, pull)

    def _pull_sources(self, package_id: str, version: int, node: DPNode) -> list[DPNode]:
        """What the branch DP's policy names as sources: the BITS-enabled standard DPs of
        its site holding the version, by name."""
        site, rows = node.dp.rule.site_code, self.rows[package_id]
        found = []
        for source in self._pull_capable:
            row = rows.get(source.dp.rule.id)
            if (
                row is not None
                and source.dp.rule.site_code == site
                and row.state == dp_states.INSTALLED
                and row.source_version == version
            ):
                found.append(source)
        return found

    def _start_pull(
        self, node: DPNode, source: DPNode, pull: Pull, package_id: str, path: tuple[Link, ...]
    ) -> None:
        size = self.packages[package_id].size

        def done(flow: Flow) -> None:
            self._pull_ended(node, pull, flow)
            if pull.version != self.version[package_id]:
                return  # superseded meanwhile
            node.pulled[package_id] += 1
            self.note(node.dp.rule.name, "pulled", f"{package_id} v{pull.version}")
            del node.pulls[package_id]
            self.move(package_id, node.dp.rule.id, dp_states.INSTALLED, pull.version)

        def cut(flow: Flow) -> None:
            self._pull_ended(node, pull, flow)
            pull.partial = size - flow.remaining
            self._pull_failed(node, package_id, pull)

        source.active += 1
        source.peak = max(source.peak, source.active)
        flow = Flow(path, size - pull.partial, source.dp.rule.name, done, cut)
        self.note(node.dp.rule.name, "pull_started", source.dp.rule.name)
        pull.flow, pull.source = flow, source
        source.serving.add(flow)
        self.net.start(flow, self.now)

    def _pull_ended(self, node: DPNode, pull: Pull, flow: Flow) -> None:
        assert pull.source is not None
        pull.source.active -= 1
        pull.source.serving.discard(flow)
        pull.flow = pull.source = None
        node.pulled_bytes += flow.done_bytes

    def _pull_failed(self, node: DPNode, package_id: str, pull: Pull) -> None:
        if not node.up:
            return  # a DP that is down reports nothing; it pulls again when it is back
        pull.attempts += 1
        self.note(node.dp.rule.name, "pull_failed", f"attempt {pull.attempts}")
        behaviour = self.world.scenario.clients
        dp_id = node.dp.rule.id
        if pull.attempts >= behaviour.branch_attempts:
            self.move(package_id, dp_id, dp_states.INSTALL_FAILED, pull.version)
            return
        self.move(package_id, dp_id, dp_states.INSTALL_RETRYING, pull.version)
        delay = backoff_delay(pull.attempts, behaviour.branch_retry_s)
        self.at(self.now + delay, self._dp_learns, node, package_id)

    # -- events ------------------------------------------------------------------------

    def _dp_down(self, node: DPNode, _: Any) -> None:
        node.up = False
        for flow in list(node.serving):
            self.net.stop(flow, self.now)
            flow.on_abort(flow)
        for pull in node.pulls.values():
            if pull.flow is not None:
                self.net.stop(pull.flow, self.now)
                pull.flow.on_abort(pull.flow)

    def _dp_up(self, node: DPNode, _: Any) -> None:
        node.up = True
        for package_id in self.rows:
            self._dp_learns(node, package_id)  # an agent asks for its policy as it starts

    def _link_down(self, place: int, _: Any) -> None:
        link = self.wan[place]
        assert link is not None
        for flow in self.net.fail_link(link, self.now):
            flow.on_abort(flow)

    def _link_up(self, place: int, _: Any) -> None:
        link = self.wan[place]
        assert link is not None
        link.up = True
        for node in self.dps.values():
            if node.dp.place == place:
                for package_id in self.rows:
                    self.at(self.learn_at(node.machine), self._dp_learns, node, package_id)

    def _new_version(self, package: w.Package, _: Any) -> None:
        """An update: the next source version goes to every DP of the package's list."""
        version = self.version[package.id] = self.version[package.id] + 1
        for dp_id, row in list(self.rows[package.id].items()):
            if row.state in dp_states.REMOVING:
                continue
            self.move(package.id, dp_id, dp_states.INSTALL_PENDING, version)
            node = self.dps[dp_id]
            pull = node.pulls.pop(package.id, None)
            if pull is not None and pull.flow is not None:  # the old version's: dropped
                flow = pull.flow
                self.net.stop(flow, self.now)
                self._pull_ended(node, pull, flow)
        self._stage(package, None)
        for dp_id, row in self.rows[package.id].items():
            node = self.dps[dp_id]
            if node.dp.rule.kind == "branch" and row.state == dp_states.INSTALL_PENDING:
                self.at(self.learn_at(node.machine), self._dp_learns, node, package.id)
        for job in self.jobs:
            if job.adv.package.id == package.id and job.version >= 0:
                self.at(self.learn_at(job.machine), self._policy, job, None)

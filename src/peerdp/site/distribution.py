"""The distribution manager: copies content to standard DPs, removes it, enforces deadlines.

Every site-server process runs it. It wakes when the site changes (the change bus) or when
the next deadline or claim falls due, and then:

* **pushes** to each standard DP whose row is `install_pending`, or `install_retrying` past
  its deadline: the files the DP's inventory does not list as held verified (from the
  site's content library), then the manifest; the row becomes `installed`, or on failure
  `install_retrying` (attempts + 1, exponential backoff) and finally `install_failed`;
* **removes** from each standard DP whose row is `removal_pending` (or `removal_retrying`
  past its deadline): the row goes, or retries and fails the same way;
* applies the **pending deadline** to every other row (branch DPs): a row still pending
  past its deadline retries, then fails, with the reason, so nothing waits unexplained.

A failure only because the DP could not be reached (no URL yet, no answer, no report from
a branch DP) marks the row `dp_unreachable`: the DP's registration or the announcement of
its URL as it starts retries it at once (dp_rows.retry_on_contact), not after its backoff.

A row being worked on is claimed (`claimed_by`, `claimed_until`, taken under
`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL), so several processes sharing one
database never push the same row at once; a claim of a process that died runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from peerdp.content.fs import CHUNK_SIZE
from peerdp.content.manifest import Manifest
from peerdp.content.objects import ContentError, ObjectStore
from peerdp.domain import dp_states
from peerdp.domain.backoff import backoff_delay
from peerdp.logs import get_logger
from peerdp.net import error_detail
from peerdp.security.tls import client_context
from peerdp.site import dp_rows
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.packages import library
from peerdp.store.models import (
    DistributionPoint,
    PackageDistributionPoint,
    PackageVersion,
    utcnow,
)

log = get_logger("peerdp.site.distribution")
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

Row = PackageDistributionPoint
MAX_WAIT_S = 30.0


class PushFailed(Exception):
    """A push or removal did not succeed; the message says why, in words.

    `unreachable`: only because the DP could not be reached or has no URL yet, so its next
    contact with the site (registration, announcing its URL) retries the row at once.
    """

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class Stopping(Exception):
    """The site server is shutting down: give the row back untouched."""


@dataclass(frozen=True)
class Job:
    """A claimed row: what to do to which DP."""

    package_id: str
    dp_id: int
    state: str
    source_version: int

    @property
    def removal(self) -> bool:
        return self.state in dp_states.REMOVING


async def distribution_manager(ctx: SiteContext) -> None:
    """The background service (site/services.py)."""
    await DistributionManager(ctx).run()


class DistributionManager:
    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.me = str(uuid.uuid4())
        self.stopping = threading.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        # When each claimed job last renewed its claim (monotonic seconds).
        self.renewed: dict[Job, float] = {}

    async def run(self) -> None:
        try:
            while True:
                generation = self.ctx.changes.generation
                free = self.settings.distribution_concurrency - len(self.inflight)
                try:
                    jobs, wait_s = await asyncio.to_thread(self.tick, free)
                except Exception:
                    log.exception("distribution manager pass failed")
                    jobs, wait_s = [], 5.0
                for job in jobs:
                    task = asyncio.create_task(asyncio.to_thread(self.work, job))
                    self.inflight.add(task)
                    task.add_done_callback(self.inflight.discard)
                await self.ctx.changes.wait(generation, wait_s)
        finally:
            self.stopping.set()  # pushes in flight stop before their next file
            for task in self.inflight:
                task.cancel()

    # -- one pass ---------------------------------------------------------------

    def tick(self, free: int) -> tuple[list[Job], float]:
        """Apply due deadlines, claim up to `free` rows; and how long to sleep after."""
        self.expire_deadlines()
        jobs = self.claim(free) if free > 0 else []
        return jobs, self.next_wait()

    def expire_deadlines(self) -> int:
        """Rows of branch DPs pending past their deadline retry or fail; how many moved."""
        now = utcnow()
        query = (
            select(Row, DistributionPoint)
            .join(DistributionPoint, DistributionPoint.id == Row.dp_id)
            .where(
                DistributionPoint.kind == "branch",
                Row.state.in_(dp_states.PENDING),
                Row.deadline_at <= now,
            )
            .order_by(Row.deadline_at)
            .limit(500)
        )
        moved = 0
        with self.ctx.transaction() as s:
            for row, dp in s.execute(_locked(s, query)).all():
                waited = self.settings.pending_deadline_s
                reason = f"no report from branch DP {dp.name} within {waited:g} s"
                self.fail(s, row, reason, dp, unreachable=True)
                moved += 1
        return moved

    def claim(self, limit: int) -> list[Job]:
        """Take up to `limit` rows of standard DPs that are due, for this process."""
        now = utcnow()
        due = or_(
            Row.state.in_((dp_states.INSTALL_PENDING, dp_states.REMOVAL_PENDING)),
            Row.deadline_at <= now,
        )
        query = (
            select(Row)
            .join(DistributionPoint, DistributionPoint.id == Row.dp_id)
            .where(
                DistributionPoint.kind == "standard",
                Row.state.in_(dp_states.PENDING),
                due,
                or_(Row.claimed_until.is_(None), Row.claimed_until < now),
            )
            .order_by(Row.updated_at)
            .limit(limit)
        )
        with self.ctx.transaction() as s:
            rows = s.scalars(_locked(s, query)).all()
            for row in rows:
                row.claimed_by = self.me
                row.claimed_until = now + timedelta(seconds=self.settings.distribution_claim_s)
            return [Job(r.package_id, r.dp_id, r.state, r.source_version) for r in rows]

    def next_wait(self) -> float:
        """Seconds until the next future deadline or claim expiry (at most MAX_WAIT_S).

        Rows already due but not claimed here are waiting for a free slot (a finished push
        publishes a change, which wakes the loop) or are claimed by another process.
        """
        now = utcnow()
        pending = and_(Row.state.in_(dp_states.PENDING), Row.deadline_at > now)
        with self.ctx.transaction() as s:
            deadline = s.scalar(select(func.min(Row.deadline_at)).where(pending))
            claim = s.scalar(select(func.min(Row.claimed_until)).where(Row.claimed_until > now))
        soonest = min((t for t in (deadline, claim) if t is not None), default=None)
        if soonest is None:
            return MAX_WAIT_S
        return min(MAX_WAIT_S, max(0.05, (soonest - utcnow()).total_seconds() + 0.05))

    # -- working on a claimed row ---------------------------------------------------------

    def work(self, job: Job) -> None:
        """Push to or remove from the DP, then move the row (or give it back)."""
        try:
            detail = self.remove(job) if job.removal else self.push(job)
        except Stopping:
            self.finish(job, None, "")
        except PushFailed as exc:
            self.finish(job, str(exc), "", unreachable=exc.unreachable)
        except Exception as exc:  # a bug must not leave the row claimed and unexplained
            log.exception(
                "distribution failed",
                package_id=job.package_id,
                source_version=job.source_version,
                dp_id=job.dp_id,
            )
            self.finish(job, f"internal error in the distribution manager: {exc}", "")
        else:
            self.finish(job, None, detail, done=True)

    def push(self, job: Job) -> str:
        dp, manifest = self._load(job)
        with self._dp_client(dp) as http:
            inventory = _json(_call(http, dp, "GET", "/dp/v1/inventory", "list its content"))
            have = {o.get("sha256") for o in inventory.get("objects", [])}
            wanted = {f.sha256: f.size for f in manifest.files}
            missing = [s for s in wanted if s not in have]
            log.info(
                "push started",
                package_id=job.package_id,
                source_version=job.source_version,
                dp=dp.name,
                dp_id=dp.id,
                files=len(missing),
                bytes_total=sum(wanted[s] for s in missing),
                files_held=len(wanted) - len(missing),
            )
            sent = self._send_objects(job, http, dp, missing)
            sent += self._send_manifest(job, http, dp, manifest)
            self._drop_other_versions(http, dp, job, inventory)
        size = sum(wanted[s] for s in sent)
        return (
            f"copied {len(sent)} file(s) ({size} bytes) to {dp.name}; "
            f"{len(wanted) - len(sent)} already there"
        )

    def remove(self, job: Job) -> str:
        dp = self._dp(job)
        if not dp.url:
            return f"{dp.name} never registered, so it holds nothing to delete"
        with self._dp_client(dp) as http:
            inventory = _json(_call(http, dp, "GET", "/dp/v1/inventory", "list its content"))
            versions = {job.source_version} | _held_versions(inventory, job.package_id)
            for version in sorted(versions):
                path = f"/dp/v1/packages/{job.package_id}/{version}"
                _call(http, dp, "DELETE", path, f"delete version {version}", ok=(204, 404))
        return f"content deleted from {dp.name}"

    def _send_objects(
        self, job: Job, http: httpx.Client, dp: DistributionPoint, digests: list[str]
    ) -> list[str]:
        store = library(self.ctx)
        for sha in digests:
            if self.stopping.is_set():
                raise Stopping
            try:
                size = store.size(sha)
            except ContentError as exc:
                raise PushFailed(f"the site's content library lacks file {sha}") from exc
            _call(
                http,
                dp,
                "PUT",
                f"/dp/v1/objects/{sha}",
                f"take file {sha[:12]}",
                content=self._chunks(job, store, sha),
                headers={"content-length": str(size)},
            )
        return digests

    def _chunks(self, job: Job, store: ObjectStore, sha: str) -> Iterator[bytes]:
        """A file's bytes from the library, keeping the claim while a long upload runs."""
        with store.open(sha) as fh:
            while chunk := fh.read(CHUNK_SIZE):
                self._keep_claim(job)
                yield chunk

    def _send_manifest(
        self, job: Job, http: httpx.Client, dp: DistributionPoint, manifest: Manifest
    ) -> list[str]:
        """PUT the manifest; if the DP lost files meanwhile, send them once more. Resent files."""
        path = f"/dp/v1/packages/{manifest.package_id}/{manifest.source_version}"
        what = f"take the manifest of version {manifest.source_version}"
        response = _call(http, dp, "PUT", path, what, content=manifest.to_bytes(), ok=(200, 409))
        if response.status_code == 200:
            return []
        missing = [str(s) for s in _json(response).get("missing", [])]
        resent = self._send_objects(job, http, dp, missing)
        _call(http, dp, "PUT", path, what, content=manifest.to_bytes())
        return resent

    def _drop_other_versions(
        self, http: httpx.Client, dp: DistributionPoint, job: Job, inventory: dict[str, Any]
    ) -> None:
        """The DP now holds the new version: older ones of the package go (best effort)."""
        for version in _held_versions(inventory, job.package_id) - {job.source_version}:
            with contextlib.suppress(PushFailed):
                path = f"/dp/v1/packages/{job.package_id}/{version}"
                _call(http, dp, "DELETE", path, f"delete version {version}", ok=(204, 404))

    # -- claims and row moves -----------------------------------------------------------

    def _keep_claim(self, job: Job) -> None:
        """Renew the claim once a third of it has passed."""
        now = time.monotonic()
        last = self.renewed.setdefault(job, now)  # the first call: the claim is fresh
        if now - last < self.settings.distribution_claim_s / 3:
            return
        self.renewed[job] = now
        until = utcnow() + timedelta(seconds=self.settings.distribution_claim_s)
        with self.ctx.transaction() as s:
            s.execute(
                update(Row)
                .where(Row.package_id == job.package_id, Row.dp_id == job.dp_id)
                .where(Row.claimed_by == self.me)
                .values(claimed_until=until)
            )

    def finish(
        self,
        job: Job,
        failure: str | None,
        detail: str,
        *,
        done: bool = False,
        unreachable: bool = False,
    ) -> None:
        """Move the claimed row after the work (unless it changed meanwhile) and release it."""
        self.renewed.pop(job, None)
        with self.ctx.transaction() as s:
            row = s.get(Row, (job.package_id, job.dp_id), with_for_update=True)
            if row is None or row.claimed_by != self.me:
                return
            row.claimed_by = row.claimed_until = None
            self.ctx.changes.publish(s, concerns=inputs.dp_row(job.package_id, job.dp_id))
            if (row.state, row.source_version) != (job.state, job.source_version):
                return  # an admin or a report changed the row: it is looked at afresh
            dp = s.get(DistributionPoint, job.dp_id)
            if failure is not None:
                self.fail(s, row, failure, dp, unreachable=unreachable)
            elif done:
                target = None if job.removal else dp_states.INSTALLED
                self._move(s, row, target, detail, dp)

    def fail(
        self,
        s: Session,
        row: Row,
        reason: str,
        dp: DistributionPoint | None,
        *,
        unreachable: bool = False,
    ) -> None:
        """One more failed attempt: retry after a backoff, or fail after the last one.

        `unreachable`: it failed only because the DP could not be reached; the DP's next
        contact retries it at once (dp_rows.retry_on_contact).
        """
        attempts = row.attempts + 1
        last = attempts >= self.settings.distribution_attempts
        removal = row.state in dp_states.REMOVING
        if last:
            target = dp_states.REMOVAL_FAILED if removal else dp_states.INSTALL_FAILED
            reason = f"{reason}; gave up after {attempts} attempt(s)"
        else:
            target = dp_states.REMOVAL_RETRYING if removal else dp_states.INSTALL_RETRYING
        standard = dp is not None and dp.kind == "standard"
        deadline = utcnow() + timedelta(seconds=self.backoff(attempts)) if standard else None
        self._move(s, row, target, reason, dp, deadline=deadline, unreachable=unreachable)

    def backoff(self, attempts: int) -> float:
        settings = self.settings
        return backoff_delay(
            attempts, settings.distribution_backoff_s, settings.distribution_backoff_max_s
        )

    def _move(
        self,
        s: Session,
        row: Row,
        target: str | None,
        detail: str,
        dp: DistributionPoint | None,
        *,
        deadline: datetime | None = None,
        unreachable: bool = False,
    ) -> None:
        package_id, version, dp_id = row.package_id, row.source_version, row.dp_id
        dp_rows.move(self.ctx, s, row, target, detail, deadline=deadline, unreachable=unreachable)
        failed = target in {dp_states.INSTALL_FAILED, dp_states.REMOVAL_FAILED}
        retrying = target in {dp_states.INSTALL_RETRYING, dp_states.REMOVAL_RETRYING}
        severity = "error" if failed else "warning" if retrying else "info"
        state = target or dp_states.REMOVED
        name = dp.name if dp else None
        dp_rows.record_state(self.ctx, s, package_id, version, dp_id, state, detail, name, severity)

    # -- loading ----------------------------------------------------------------------------

    def _dp(self, job: Job) -> DistributionPoint:
        with self.ctx.transaction() as s:
            dp = s.get(DistributionPoint, job.dp_id)
            if dp is None:
                raise PushFailed(f"distribution point {job.dp_id} no longer exists")
            return dp

    def _load(self, job: Job) -> tuple[DistributionPoint, Manifest]:
        dp = self._dp(job)
        if not dp.url:
            raise PushFailed(
                f"{dp.name} has not registered its URL with the site yet", unreachable=True
            )
        with self.ctx.transaction() as s:
            version = s.get(PackageVersion, (job.package_id, job.source_version))
            if version is None:
                raise PushFailed(f"{job.package_id} has no source version {job.source_version}")
            return dp, Manifest.from_json(version.manifest)

    @contextlib.contextmanager
    def _dp_client(self, dp: DistributionPoint) -> Iterator[httpx.Client]:
        assert dp.url is not None
        ttl = int(self.settings.distribution_timeout_s * 2 + 60)
        key = self.ctx.key

        def authorise(request: httpx.Request) -> httpx.Request:
            # A fresh, short-lived token for each request: a long push never outlives one.
            request.headers["Authorization"] = f"Bearer {key.distribution_token(dp.id, ttl)}"
            return request

        timeout = httpx.Timeout(self.settings.distribution_timeout_s, connect=10.0)
        # An HTTPS DP's certificate is checked with the site's --ca-file, else the system's CAs.
        verify = client_context(self.settings.ca_file)
        with httpx.Client(
            base_url=dp.url.rstrip("/"), auth=authorise, timeout=timeout, verify=verify
        ) as http:
            yield http


def _locked(s: Session, query: SelectT) -> SelectT:
    """FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's writer lock already serialises."""
    if s.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=Row)
    return query


def _call(
    http: httpx.Client,
    dp: DistributionPoint,
    method: str,
    path: str,
    what: str,
    *,
    ok: tuple[int, ...] = (200,),
    **kwargs: Any,
) -> httpx.Response:
    """One request to a DP; PushFailed with the reason unless it answers one of `ok`."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise PushFailed(f"cannot reach {dp.name} at {dp.url}: {reason}", unreachable=True) from exc
    if response.status_code not in ok:
        raise PushFailed(
            f"{dp.name} refused to {what}: {response.status_code} {error_detail(response)}"
        )
    return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise PushFailed(f"the DP answered something that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PushFailed("the DP answered JSON that is not an object")
    return data


def _held_versions(inventory: dict[str, Any], package_id: str) -> set[int]:
    return {
        int(p["source_version"])
        for p in inventory.get("packages", [])
        if isinstance(p, dict) and p.get("package_id") == package_id
    }

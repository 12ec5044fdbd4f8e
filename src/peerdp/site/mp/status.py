"""`POST /mp/v1/status`: batches of status messages from clients and DPs.

A DP's `package_state` message moves its row of the package's DP list, only along
SCCM's transitions and only for packages on that DP's list. A DP that found a version
damaged reports `content_damaged`: an installed row goes back to `install_pending`, so
the site sends the content again and the MP stops offering that DP for it meanwhile.
Everything else is appended to the status log as it is; a client's message about an
advertisement also moves that deployment's state (site/deployment_status.py), and the
bytes a machine says it downloaded from each DP (`bytes_by_dp`) are counted on their rows
of the package's DP list, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from peerdp.domain import dp_states
from peerdp.domain.status_types import PULL_PROGRESS
from peerdp.site import deployment_status, dp_rows, pull_progress
from peerdp.site.context import SiteContext
from peerdp.site.mp.identity import Caller
from peerdp.site.mp.schemas import StatusBatch, StatusIn, StatusResult
from peerdp.site.status import record
from peerdp.store.models import PackageDistributionPoint, StatusMessage

PACKAGE_STATE = "package_state"
REPORTABLE = frozenset(
    {
        dp_states.INSTALLED,
        dp_states.INSTALL_RETRYING,
        dp_states.INSTALL_FAILED,
        dp_states.REMOVED,
        dp_states.REMOVAL_RETRYING,
        dp_states.REMOVAL_FAILED,
        dp_states.CONTENT_DAMAGED,
        dp_states.WAITING_FOR_PRESTAGE,
    }
)


class Refused(Exception):
    """One message of a batch that cannot be applied; the rest still are."""


def receive(ctx: SiteContext, caller: Caller, batch: StatusBatch) -> StatusResult:
    accepted, rejected = 0, []
    for index, message in enumerate(batch.messages):
        try:
            with ctx.transaction() as s:
                apply(ctx, s, caller, message)
            accepted += 1
        except Refused as exc:
            rejected.append({"index": index, "detail": str(exc)})
    return StatusResult(accepted=accepted, rejected=rejected)


def apply(ctx: SiteContext, s: Session, caller: Caller, message: StatusIn) -> None:
    if message.type == PULL_PROGRESS:
        _note_progress(ctx, s, caller, message)
        return
    if message.type == PACKAGE_STATE:
        if caller.dp_id is None:
            raise Refused("only distribution points report package states")
        _log(ctx, s, caller, message)
        _move_package_state(ctx, s, caller, message)
        if message.state == dp_states.INSTALLED:
            _count_bytes(s, caller, message)
        return
    logged = _log(ctx, s, caller, message)
    if caller.role == "client":
        source_dp_id = _count_bytes(s, caller, message)
        if _note_deployment(s, logged, source_dp_id):
            ctx.changes.publish(s, deployments=True, concerns=())


def _note_progress(ctx: SiteContext, s: Session, caller: Caller, message: StatusIn) -> None:
    """A branch DP's pull in progress: kept on its package row, not logged."""
    if caller.dp_id is None:
        raise Refused("only distribution points report pull progress")
    package, version = message.package_id, message.source_version
    done, total = message.bytes_done, message.bytes_total
    if package is None or version is None or done is None or total is None:
        raise Refused(
            "a pull_progress message needs package_id, source_version, bytes_done, bytes_total"
        )
    # A late report (the row moved on) is dropped, not refused: the DP did nothing wrong.
    pull_progress.note(ctx, s, caller.dp_id, package, version, done, total)


def _count_bytes(s: Session, caller: Caller, message: StatusIn) -> int | None:
    """Count the bytes the machine downloaded from each DP (`bytes_by_dp`); the DP most of
    them came from (None: none named)."""
    if not message.bytes_by_dp or message.package_id is None:
        return None
    ids = deployment_status.dp_ids(s, message.bytes_by_dp)
    by_dp = {ids[name]: count for name, count in message.bytes_by_dp.items() if name in ids}
    deployment_status.count_bytes(s, message.package_id, by_dp, puller_dp_id=caller.dp_id)
    return max(by_dp, key=lambda dp_id: by_dp[dp_id]) if by_dp else None


def _note_deployment(s: Session, logged: StatusMessage, source_dp_id: int | None) -> bool:
    """Move the client's deployment state, if the message reports one; whether it did."""
    fields = ("type", "client_name", "advertisement_id", "source_version", "state")
    columns = {name: getattr(logged, name) for name in fields}
    columns.update(exit_code=logged.exit_code, detail=logged.detail, at=logged.at)
    report = deployment_status.report_of({**columns, "source_dp_id": source_dp_id})
    return report is not None and deployment_status.upsert(s, [report])


def _log(ctx: SiteContext, s: Session, caller: Caller, message: StatusIn) -> StatusMessage:
    at, next_at = message.at, message.next_attempt_at
    for name, moment in (("at", at), ("next_attempt_at", next_at)):
        if moment is not None and moment.tzinfo is None:
            raise Refused(f"'{name}' must carry a time zone (RFC 3339 UTC)")
    fields: dict[str, Any] = {
        "package_id": message.package_id,
        "source_version": message.source_version,
        "advertisement_id": message.advertisement_id,
        "state": message.state,
        "exit_code": message.exit_code,
        "attempt": message.attempt,
        "next_attempt_at": next_at,
    }
    # A program's success may have another exit code than 0 (3010: restart required).
    exit_failed = message.exit_code not in (None, 0) and not message.type.endswith("_succeeded")
    failed = message.state in {dp_states.INSTALL_FAILED, dp_states.REMOVAL_FAILED}
    failed = failed or exit_failed or message.type.endswith("_failed")
    damaged = message.state == dp_states.CONTENT_DAMAGED
    severity = "error" if failed else "warning" if damaged else "info"
    if caller.role == "client":
        fields["client_name"] = caller.name
    else:
        fields["dp_id"] = caller.dp_id
    return machine_event(
        ctx, s, caller, message.type, detail=message.detail, severity=severity, at=at, **fields
    )


def machine_event(
    ctx: SiteContext, s: Session, caller: Caller, type: str, **fields: Any
) -> StatusMessage:
    """A status message a machine sent, or that the MP writes on behalf of the caller."""
    return record(s, ctx.changes, component=caller.role, source=caller.name, type=type, **fields)


def _move_package_state(ctx: SiteContext, s: Session, caller: Caller, message: StatusIn) -> None:
    state = message.state or ""
    if state not in REPORTABLE:
        raise Refused(f"'{state}' is not a state a DP reports ({', '.join(sorted(REPORTABLE))})")
    if message.package_id is None or message.source_version is None:
        raise Refused("a package_state message needs package_id and source_version")
    row = s.get(PackageDistributionPoint, (message.package_id, caller.dp_id))
    if row is None:
        raise Refused(f"package {message.package_id} is not on this DP's list")
    if message.source_version != row.source_version:
        raise Refused(
            f"stale report: this DP is to hold source version {row.source_version} of "
            f"{message.package_id}, not {message.source_version}"
        )
    if state == dp_states.CONTENT_DAMAGED:
        target = dp_states.after_damage(row.state)
        if target is not None:  # otherwise the row stays: the report is logged only
            dp_rows.move(ctx, s, row, target, message.detail or state)
        return
    try:
        dp_rows.move(ctx, s, row, dp_states.reported_target(state), message.detail or state)
    except dp_rows.BadMove as exc:
        raise Refused(str(exc)) from exc

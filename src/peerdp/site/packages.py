"""Package content and DP-list operations shared by the admin API and the MP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import IO

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerdp.content.archive_limits import ArchiveLimits, ArchiveTooLarge
from peerdp.content.manifest import Manifest, import_tar
from peerdp.content.objects import ContentError, ObjectStore
from peerdp.domain import dp_states
from peerdp.domain.timestamps import rfc3339
from peerdp.site import pull_progress
from peerdp.site.admin.schemas import PackageDPOut, PackageVersionOut
from peerdp.site.context import SiteContext, get_or_404
from peerdp.site.errors import Conflict, Invalid, TooLarge
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.status import site_event
from peerdp.store.models import (
    DistributionPoint,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    utcnow,
)


def live_package(s: Session, package_id: str) -> Package:
    """The package, if it exists and is not being deleted (404, else 409)."""
    package = get_or_404(s, Package, package_id, "package")
    if package.deleted_at is not None:
        raise Conflict(
            f"package {package_id} was deleted and its content is being removed from its "
            "DPs; it cannot be changed (see `peerdp package dp list` for the removal)"
        )
    return package


def library(ctx: SiteContext) -> ObjectStore:
    return ObjectStore(ctx.library_dir)


def upload_limits(ctx: SiteContext) -> ArchiveLimits:
    """What one uploaded package version may hold (PEERDP_MAX_UPLOAD_BYTES and _MEMBERS)."""
    settings = ctx.settings
    return ArchiveLimits(settings.max_upload_bytes, settings.max_upload_members)


def import_version(
    ctx: SiteContext, package_id: str, archive: IO[bytes], *, force: bool = False
) -> PackageVersionOut:
    """Store a tar archive's files once each and make it the package's next source version.

    Content identical to the current source version (the same paths, sizes and SHA-256s)
    makes no new version unless `force`: the answer is the current version, `changed`
    false, so DPs and clients are not sent the same content (and programs not run) again.
    """
    with ctx.transaction() as s:
        version = live_package(s, package_id).source_version + 1
    created = utcnow()
    try:
        manifest, stats = import_tar(
            library(ctx), archive, package_id, version, rfc3339(created), upload_limits(ctx)
        )
    except ArchiveTooLarge as exc:
        raise TooLarge(f"package content refused: {exc}") from exc
    except ContentError as exc:
        raise Invalid(f"package content refused: {exc}") from exc
    with ctx.transaction() as s:
        package = live_package(s, package_id)
        if package.source_version != version - 1:
            raise Conflict(f"package {package_id} was updated meanwhile; send the content again")
        current = s.get(PackageVersion, (package_id, version - 1))
        if not force and current is not None and same_files(current, manifest):
            return _unchanged(ctx, s, current)
        document = manifest.to_json()
        row = PackageVersion(
            package_id=package_id,
            source_version=version,
            manifest=document,
            manifest_digest=manifest.digest(),
            file_count=stats.files,
            total_size=stats.bytes,
            created_at=created,
        )
        s.add(row)
        package.source_version = version
        package.updated_at = created
        _send_new_version(ctx, s, package_id, version)
        site_event(
            s,
            ctx,
            "package_version_created",
            package_id=package_id,
            source_version=version,
            detail=f"{stats.files} files, {stats.bytes} bytes; "
            f"{stats.new_files} files ({stats.new_bytes} bytes) new to the content library",
        )
        # Its clients and DPs (new version), and the pull sources of its branch DPs.
        concerned = [inputs.package(package_id), inputs.package_dps(package_id)]
        ctx.changes.publish(s, concerns=concerned)
        return PackageVersionOut(
            package_id=package_id,
            source_version=version,
            manifest_digest=row.manifest_digest,
            file_count=stats.files,
            total_size=stats.bytes,
            new_files=stats.new_files,
            new_bytes=stats.new_bytes,
            created_at=created,
            manifest=document,
            changed=True,
            detail=f"source version {version} created",
        )


def same_files(version: PackageVersion, manifest: Manifest) -> bool:
    """Whether `manifest` lists exactly the files of `version` (paths, sizes, SHA-256s)."""
    return Manifest.from_json(version.manifest).files == manifest.files


def _unchanged(ctx: SiteContext, s: Session, current: PackageVersion) -> PackageVersionOut:
    """The answer to an upload identical to the current version: nothing is made."""
    detail = (
        f"the content is identical to source version {current.source_version}: "
        "no new version made (send it with force to make one anyway)"
    )
    site_event(
        s,
        ctx,
        "package_version_unchanged",
        package_id=current.package_id,
        source_version=current.source_version,
        detail=detail,
    )
    return PackageVersionOut(
        package_id=current.package_id,
        source_version=current.source_version,
        manifest_digest=current.manifest_digest,
        file_count=current.file_count,
        total_size=current.total_size,
        new_files=0,
        new_bytes=0,
        created_at=current.created_at,
        manifest=current.manifest,
        changed=False,
        detail=detail,
    )


def _send_new_version(ctx: SiteContext, s: Session, package_id: str, version: int) -> None:
    """Every DP holding or getting the package is now to get the new version."""
    package = get_or_404(s, Package, package_id, "package")
    rows = s.execute(
        select(PackageDistributionPoint, DistributionPoint)
        .join(DistributionPoint, DistributionPoint.id == PackageDistributionPoint.dp_id)
        .where(PackageDistributionPoint.package_id == package_id)
    )
    for row, dp in rows:
        if row.state in dp_states.REMOVING:
            continue
        target = dp_states.install_target(dp.kind == "branch", package.auto_download_branch)
        set_state(ctx, row, target, _update_detail(dp, package_id, version, target))
        row.source_version = version
        row.attempts = 0


def _update_detail(dp: DistributionPoint, package_id: str, version: int, target: str) -> str:
    if target == dp_states.WAITING_FOR_PRESTAGE:
        return prestage_wait(dp, package_id, version)
    return f"update to source version {version}"


def prestage_wait(dp: DistributionPoint, package_id: str, version: int) -> str:
    """The detail of a row waiting for a prestage: what the administrator is to do."""
    return (
        f"automatic download is off: waiting for an administrator to prestage source version "
        f"{version} on {dp.name} (peerdp package export {package_id} FILE, then "
        f"peerdp branch import FILE on {dp.name})"
    )


def apply_auto_download(ctx: SiteContext, s: Session, package: Package) -> None:
    """After the package's automatic download was turned on or off: its branch DPs still
    to get the version pull it now, or wait for a prestage instead."""
    rows = s.execute(
        select(PackageDistributionPoint, DistributionPoint)
        .join(DistributionPoint, DistributionPoint.id == PackageDistributionPoint.dp_id)
        .where(
            PackageDistributionPoint.package_id == package.id,
            DistributionPoint.kind == "branch",
        )
    )
    for row, dp in rows:
        if package.auto_download_branch and row.state == dp_states.WAITING_FOR_PRESTAGE:
            set_state(ctx, row, dp_states.INSTALL_PENDING, _waiting_for(dp))
        elif not package.auto_download_branch and (
            row.state in dp_states.PENDING - dp_states.REMOVING
            or row.state == dp_states.INSTALL_FAILED
        ):
            detail = prestage_wait(dp, package.id, row.source_version)
            set_state(ctx, row, dp_states.WAITING_FOR_PRESTAGE, detail)
            row.attempts = 0


def pending_deadline(ctx: SiteContext) -> datetime:
    return utcnow() + timedelta(seconds=ctx.settings.pending_deadline_s)


def set_state(ctx: SiteContext, row: PackageDistributionPoint, state: str, detail: str) -> None:
    """Move a DP-list row; a pending state always gets a deadline and an explanation."""
    row.state = state
    row.detail = detail
    row.updated_at = utcnow()
    row.deadline_at = pending_deadline(ctx) if state in dp_states.PENDING else None
    row.dp_unreachable = False  # a failure because the DP was unreachable says so after this
    pull_progress.clear(row)


def add_dp_to_package(
    ctx: SiteContext, s: Session, package_id: str, dp_id: int, *, origin: str
) -> PackageDistributionPoint:
    """Put a DP on a package's list (install_pending, or waiting_for_prestage for a branch DP
    of a package with automatic download off) and change its policy."""
    package = live_package(s, package_id)
    dp = get_or_404(s, DistributionPoint, dp_id, "distribution point")
    if package.source_version < 1:
        raise Conflict(f"package {package_id} has no content yet; add a source version first")
    row = s.get(PackageDistributionPoint, (package_id, dp_id))
    if row is not None and row.state not in dp_states.READDABLE:
        raise Conflict(
            f"distribution point {dp.name} is already on package {package_id}'s list ({row.state})"
        )
    if row is None:
        row = PackageDistributionPoint(
            package_id=package_id, dp_id=dp_id, source_version=package.source_version
        )
        s.add(row)
    row.origin = origin
    row.source_version = package.source_version
    row.attempts = 0
    target = dp_states.install_target(dp.kind == "branch", package.auto_download_branch)
    if target == dp_states.WAITING_FOR_PRESTAGE:
        set_state(ctx, row, target, prestage_wait(dp, package_id, package.source_version))
    else:
        set_state(ctx, row, target, _waiting_for(dp))
    site_event(
        s,
        ctx,
        "dp_added_to_package",
        package_id=package_id,
        source_version=package.source_version,
        dp_id=dp_id,
        state=target,
        detail=f"{dp.name} added by {origin}",
    )
    ctx.changes.publish(s, concerns=inputs.dp_row(package_id, dp_id))
    s.flush()
    return row


def _waiting_for(dp: DistributionPoint) -> str:
    if dp.kind == "branch":
        return f"waiting for branch DP {dp.name} to pull the content (through its policy)"
    return f"waiting for the distribution manager to copy the content to {dp.name}"


def remove_dp_from_package(ctx: SiteContext, s: Session, row: PackageDistributionPoint) -> None:
    if row.state in dp_states.REMOVING - {dp_states.REMOVAL_FAILED}:
        raise Conflict(f"removal from distribution point {row.dp_id} is already under way")
    set_state(ctx, row, dp_states.REMOVAL_PENDING, "waiting for the DP to delete the content")
    row.attempts = 0
    site_event(
        s,
        ctx,
        "dp_removal_requested",
        package_id=row.package_id,
        source_version=row.source_version,
        dp_id=row.dp_id,
        state=dp_states.REMOVAL_PENDING,
    )
    ctx.changes.publish(s, concerns=inputs.dp_row(row.package_id, row.dp_id))
    s.flush()


def package_dp_rows(s: Session, package_id: str, only_dp: int | None = None) -> list[PackageDPOut]:
    query = (
        select(PackageDistributionPoint, DistributionPoint.name)
        .join(DistributionPoint, DistributionPoint.id == PackageDistributionPoint.dp_id)
        .where(PackageDistributionPoint.package_id == package_id)
        .order_by(DistributionPoint.name)
    )
    if only_dp is not None:
        query = query.where(PackageDistributionPoint.dp_id == only_dp)
    return [
        PackageDPOut(
            package_id=row.package_id,
            dp_id=row.dp_id,
            dp_name=name,
            state=row.state,
            source_version=row.source_version,
            origin=row.origin,
            detail=row.detail,
            attempts=row.attempts,
            deadline_at=row.deadline_at,
            updated_at=row.updated_at,
        )
        for row, name in s.execute(query)
    ]


def pull_sources(package_id: str, version: int) -> Select[DistributionPoint]:
    """BITS-enabled standard DPs holding this version: where branch DPs may pull it from
    (condition 1 of the seed). Callers narrow it to a site."""
    return (
        select(DistributionPoint)
        .join(PackageDistributionPoint, PackageDistributionPoint.dp_id == DistributionPoint.id)
        .where(
            PackageDistributionPoint.package_id == package_id,
            PackageDistributionPoint.source_version == version,
            PackageDistributionPoint.state == dp_states.INSTALLED,
            DistributionPoint.kind == "standard",
            DistributionPoint.bits_enabled.is_(True),
        )
    )

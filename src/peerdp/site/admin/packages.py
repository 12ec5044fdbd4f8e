"""`/api/v1/packages`: packages, their source versions, programs and DP lists."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from peerdp.site.admin.schemas import (
    PackageDeletionOut,
    PackageDPIn,
    PackageDPOut,
    PackageId,
    PackageIn,
    PackageOut,
    PackagePatch,
    PackageVersionOut,
    ProgramIn,
    ProgramOut,
    ProgramPatch,
)
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Conflict, Invalid, NotFound
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.package_deletion import delete_package as start_deletion
from peerdp.site.packages import (
    add_dp_to_package,
    apply_auto_download,
    import_version,
    live_package,
    package_dp_rows,
    remove_dp_from_package,
)
from peerdp.store.models import (
    Advertisement,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    Program,
    StatusMessage,
    utcnow,
)

router = APIRouter(prefix="/packages", tags=["packages"])

ON_DEMAND_NEEDS_AUTO_DOWNLOAD = (
    "on-demand distribution needs automatic download to branch DPs (on_demand requires "
    "auto_download_branch): a branch DP added on demand must pull the content by itself; "
    "turn on-demand off to prestage the package instead"
)


def check_branch_options(on_demand: bool, auto_download_branch: bool) -> None:
    """Refuse on-demand distribution without automatic download (as SCCM does): a branch DP
    added on demand would wait for a prestage no administrator knows to make."""
    if on_demand and not auto_download_branch:
        raise Invalid(ON_DEMAND_NEEDS_AUTO_DOWNLOAD)


def next_package_id(session: Session, site_code: str) -> str:
    """The site code and the next five hex digits (PS100001, PS100002, ...).

    An ID is never given twice: a deleted package's ID stays taken, since agents and DPs
    may still hold `/content/{id}/{version}` of it. The status log, which is append-only,
    names every package this site deleted (`package_deleted`).
    """
    prefix = f"{site_code}%"
    live = session.scalars(select(Package.id).where(Package.id.like(prefix)))
    deleted = session.scalars(
        select(StatusMessage.package_id).where(
            StatusMessage.component == "site",
            StatusMessage.type == "package_deleted",
            StatusMessage.package_id.like(prefix),
        )
    )
    ids = [*live, *(i for i in deleted if i is not None)]
    highest = max((int(i[3:], 16) for i in ids), default=0)
    if highest >= 0xFFFFF:
        raise Conflict(f"site {site_code} has used all package IDs")
    return f"{site_code}{highest + 1:05X}"


@router.get("", response_model=list[PackageOut])
def list_packages(ctx: SiteContext = Depends(site)) -> list[Package]:
    with ctx.transaction() as s:
        return list(s.scalars(select(Package).order_by(Package.id)))


@router.post("", response_model=PackageOut, status_code=201)
def create_package(body: PackageIn, ctx: SiteContext = Depends(site)) -> Package:
    """Create a package; `on_demand` needs `auto_download_branch` (422 otherwise)."""
    check_branch_options(body.on_demand, body.auto_download_branch)
    for _attempt in range(5):
        try:
            with ctx.transaction() as s:
                taken = s.scalar(select(Package).where(Package.name == body.name))
                if taken is not None:
                    raise Conflict(_name_taken(taken))
                package = Package(id=next_package_id(s, ctx.site_code), **body.model_dump())
                s.add(package)
                s.flush()
                return package
        except IntegrityError:
            continue  # another request took the same ID; take the next
    raise Conflict("could not allocate a package ID; try again")


def _name_taken(package: Package) -> str:
    if package.deleted_at is not None:
        return (
            f"a package named '{package.name}' ({package.id}) was deleted and is still being "
            "removed from its DPs; its name is free when that is done (choose another meanwhile)"
        )
    return f"a package named '{package.name}' already exists"


@router.get("/{package_id}", response_model=PackageOut)
def get_package(package_id: PackageId, ctx: SiteContext = Depends(site)) -> Package:
    with ctx.transaction() as s:
        return get_or_404(s, Package, package_id, "package")


@router.patch("/{package_id}", response_model=PackageOut)
def patch_package(
    package_id: PackageId, body: PackagePatch, ctx: SiteContext = Depends(site)
) -> Package:
    """Change a package; the result may not have `on_demand` without `auto_download_branch`."""
    with ctx.transaction() as s:
        package = live_package(s, package_id)
        changes = body.model_dump(exclude_unset=True)
        for name, value in changes.items():
            if value is None:
                raise Invalid(f"{name} cannot be null")
        check_branch_options(
            changes.get("on_demand", package.on_demand),
            changes.get("auto_download_branch", package.auto_download_branch),
        )
        auto_download_before = package.auto_download_branch
        for name, value in changes.items():
            setattr(package, name, value)
        if package.auto_download_branch != auto_download_before:
            apply_auto_download(ctx, s, package)
        package.updated_at = datetime.now(UTC)
        s.flush()
        ctx.changes.publish(s, concerns=[inputs.package(package_id)])
        return package


@router.delete(
    "/{package_id}",
    status_code=204,
    response_model=None,
    responses={202: {"model": PackageDeletionOut, "description": "Removal from DPs under way."}},
)
def delete_package(package_id: PackageId, ctx: SiteContext = Depends(site)) -> Response:
    """Delete a package: 204 when no DP held it (it is gone); 202 when its content is being
    removed from the DPs that hold it (every row `removal_pending`; the package, marked
    `deleted_at`, goes when the last DP has deleted it). Its advertisements go at once.
    Deleting it again retries DPs whose removal failed."""
    with ctx.transaction() as s:
        package = get_or_404(s, Package, package_id, "package")
        name = package.name
        holding = start_deletion(ctx, s, package)
        if s.get(Package, package_id) is None:
            return Response(status_code=204)
        answer = PackageDeletionOut(
            package_id=package_id,
            name=name,
            deleted_at=package.deleted_at or utcnow(),
            removing_from=holding,
            detail=f"package {package_id} deleted; its content is being removed from "
            f"{holding} DP(s), and it goes when they have all deleted it "
            f"(`peerdp package dp list {package_id}` shows each DP's removal)",
            distribution_points=package_dp_rows(s, package_id),
        )
    return JSONResponse(answer.model_dump(mode="json"), status_code=202)


@router.post(
    "/{package_id}/versions",
    response_model=PackageVersionOut,
    status_code=201,
    responses={200: {"description": "Unchanged content: no new version (`changed` false)."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The package folder as a tar archive (optionally gzip-compressed): "
            "regular files and directories only, relative paths inside the folder.",
            "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_version(
    package_id: PackageId,
    request: Request,
    response: Response,
    force: bool = Query(
        False, description="Make a new source version even if the content is unchanged."
    ),
    ctx: SiteContext = Depends(site),
) -> PackageVersionOut:
    """Create the next source version from a tar archive of the package folder (201).

    Content identical to the current source version (the same files with the same sizes
    and SHA-256s) makes no new version: the answer is 200 with the current version,
    `changed` false and a `detail` saying so; DPs and clients are sent nothing. With
    `force=true` a new version is made anyway (201).
    """
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, dir=str(ctx.library_dir)) as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)
        answer = await run_in_threadpool(import_version, ctx, package_id, body, force=force)
    if not answer.changed:
        response.status_code = 200
    return answer


@router.get("/{package_id}/versions", response_model=list[dict[str, Any]])
def list_versions(package_id: PackageId, ctx: SiteContext = Depends(site)) -> list[dict[str, Any]]:
    with ctx.transaction() as s:
        get_or_404(s, Package, package_id, "package")
        versions = s.scalars(
            select(PackageVersion)
            .where(PackageVersion.package_id == package_id)
            .order_by(PackageVersion.source_version)
        )
        return [
            {
                "package_id": v.package_id,
                "source_version": v.source_version,
                "manifest_digest": v.manifest_digest,
                "file_count": v.file_count,
                "total_size": v.total_size,
                "created_at": v.created_at,
            }
            for v in versions
        ]


@router.get("/{package_id}/versions/{source_version}/manifest")
def get_manifest(
    package_id: PackageId, source_version: int, ctx: SiteContext = Depends(site)
) -> dict[str, Any]:
    with ctx.transaction() as s:
        version = s.get(PackageVersion, (package_id, source_version))
        if version is None:
            raise NotFound(f"package {package_id} has no source version {source_version}")
        return version.manifest


# Programs -------------------------------------------------------------------------


def _program(s: Session, package_id: str, name: str) -> Program:
    get_or_404(s, Package, package_id, "package")
    program = s.scalar(
        select(Program).where(Program.package_id == package_id, Program.name == name)
    )
    if program is None:
        raise NotFound(f"package {package_id} has no program '{name}'")
    return program


@router.get("/{package_id}/programs", response_model=list[ProgramOut])
def list_programs(package_id: PackageId, ctx: SiteContext = Depends(site)) -> list[Program]:
    with ctx.transaction() as s:
        get_or_404(s, Package, package_id, "package")
        query = select(Program).where(Program.package_id == package_id).order_by(Program.name)
        return list(s.scalars(query))


@router.post("/{package_id}/programs", response_model=ProgramOut, status_code=201)
def create_program(
    package_id: PackageId, body: ProgramIn, ctx: SiteContext = Depends(site)
) -> Program:
    with ctx.transaction() as s:
        live_package(s, package_id)
        exists = s.scalar(
            select(func.count()).where(Program.package_id == package_id, Program.name == body.name)
        )
        if exists:
            raise Conflict(f"package {package_id} already has a program '{body.name}'")
        program = Program(package_id=package_id, **body.model_dump())
        s.add(program)
        s.flush()
        ctx.changes.publish(s, concerns=[inputs.package(package_id)])
        return program


@router.get("/{package_id}/programs/{name}", response_model=ProgramOut)
def get_program(package_id: PackageId, name: str, ctx: SiteContext = Depends(site)) -> Program:
    with ctx.transaction() as s:
        return _program(s, package_id, name)


@router.patch("/{package_id}/programs/{name}", response_model=ProgramOut)
def patch_program(
    package_id: PackageId, name: str, body: ProgramPatch, ctx: SiteContext = Depends(site)
) -> Program:
    with ctx.transaction() as s:
        program = _program(s, package_id, name)
        for field, value in body.model_dump(exclude_unset=True).items():
            if value is None:
                raise Invalid(f"{field} cannot be null")
            setattr(program, field, value)
        s.flush()
        ctx.changes.publish(s, concerns=[inputs.package(package_id)])
        return program


@router.delete("/{package_id}/programs/{name}", status_code=204)
def delete_program(package_id: PackageId, name: str, ctx: SiteContext = Depends(site)) -> None:
    with ctx.transaction() as s:
        program = _program(s, package_id, name)
        used = s.scalars(
            select(Advertisement.name).where(
                Advertisement.package_id == package_id, Advertisement.program_name == name
            )
        ).all()
        if used:
            raise Conflict(f"program '{name}' is used by advertisement(s): {', '.join(used)}")
        s.delete(program)
        ctx.changes.publish(s, concerns=[inputs.package(package_id)])


# The package's DP list ---------------------------------------------------------------


@router.get("/{package_id}/distribution-points", response_model=list[PackageDPOut])
def list_package_dps(package_id: PackageId, ctx: SiteContext = Depends(site)) -> list[PackageDPOut]:
    with ctx.transaction() as s:
        get_or_404(s, Package, package_id, "package")
        return package_dp_rows(s, package_id)


@router.post("/{package_id}/distribution-points", response_model=PackageDPOut, status_code=201)
def add_package_dp(
    package_id: PackageId, body: PackageDPIn, ctx: SiteContext = Depends(site)
) -> PackageDPOut:
    with ctx.transaction() as s:
        row = add_dp_to_package(ctx, s, package_id, body.dp_id, origin="admin")
        return package_dp_rows(s, package_id, only_dp=row.dp_id)[0]


@router.delete("/{package_id}/distribution-points/{dp_id}", response_model=PackageDPOut)
def remove_package_dp(
    package_id: PackageId, dp_id: int, ctx: SiteContext = Depends(site)
) -> PackageDPOut:
    """Start removing the package from the DP (removal_pending); the row goes when it is done."""
    with ctx.transaction() as s:
        row = s.get(PackageDistributionPoint, (package_id, dp_id))
        if row is None:
            get_or_404(s, Package, package_id, "package")
            raise NotFound(f"distribution point {dp_id} is not on package {package_id}'s list")
        remove_dp_from_package(ctx, s, row)
        return package_dp_rows(s, package_id, only_dp=dp_id)[0]

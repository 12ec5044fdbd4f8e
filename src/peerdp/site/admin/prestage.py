"""`GET /api/v1/packages/{id}/versions/{n}/prestage`: a signed prestage archive of a version.

SCCM's prestaging: a package whose branch DPs do not download automatically is carried to
them by hand. The archive holds the version's files and its manifest signed with the site's
key (see content/prestage.py); `peerdp branch import FILE` on the branch DP checks it
offline and loads it, with no transfer over the WAN.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from peerdp.content.manifest import Manifest
from peerdp.content.prestage import archive_chunks, archive_size, signed_header
from peerdp.domain.timestamps import rfc3339
from peerdp.site.context import SiteContext, get_or_404, site
from peerdp.site.errors import Conflict, NotFound
from peerdp.site.packages import library
from peerdp.site.status import site_event
from peerdp.store.models import Package, PackageVersion, utcnow

router = APIRouter(prefix="/packages", tags=["packages"])

ARCHIVE_TYPE = "application/x-tar"


@router.get(
    "/{package_id}/versions/{source_version}/prestage",
    summary="A signed prestage archive of one source version (for `peerdp branch import`)",
    response_class=StreamingResponse,
    responses={200: {"content": {ARCHIVE_TYPE: {"schema": {"type": "string"}}}}},
)
def export_version(
    package_id: str, source_version: int, ctx: SiteContext = Depends(site)
) -> StreamingResponse:
    """The version's files and its manifest signed by the site, as a tar archive."""
    with ctx.transaction() as s:
        get_or_404(s, Package, package_id, "package")
        version = s.get(PackageVersion, (package_id, source_version))
        if version is None:
            raise NotFound(f"package {package_id} has no source version {source_version}")
        manifest = Manifest.from_json(version.manifest)
    objects = library(ctx)
    missing = [f.path for f in manifest.files if not objects.has(f.sha256)]
    if missing:
        raise Conflict(
            f"the content library lacks {len(missing)} file(s) of {package_id} "
            f"v{source_version} (first: {missing[0]}); update the package again"
        )
    header = signed_header(ctx.key, ctx.site_code, manifest, rfc3339(utcnow()))
    size = archive_size(header, manifest, objects)
    with ctx.transaction() as s:
        site_event(
            s,
            ctx,
            "package_exported",
            package_id=package_id,
            source_version=source_version,
            detail=f"prestage archive exported: {len(manifest.files)} file(s), {size} bytes",
        )
    name = f"{package_id}-v{source_version}.prestage.tar"
    return StreamingResponse(
        archive_chunks(header, manifest, objects),
        media_type=ARCHIVE_TYPE,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )

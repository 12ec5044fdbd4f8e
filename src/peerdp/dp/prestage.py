"""`peerdp branch import FILE`: load a prestage archive into a branch DP's store.

Run on the branch DP's machine with its data directory (the one `peerdp branch serve`
uses; the branch DP may be running). The archive is checked offline against the site key
the branch DP pinned at registration (content/prestage.py): a damaged, unsigned or
foreign archive is refused and nothing is stored. When the site can be reached, the
archive must be the version the site assigns this DP (else it is refused before anything
is stored, since the branch DP would delete it), and the import reports it `installed`
with the DP's own credential; the site's row becomes `installed` with a status message
saying it was prestaged. When the site cannot be reached the content is stored all the
same, and the running branch DP reports it when it next applies its policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerdp.content.objects import ContentError
from peerdp.content.prestage import PrestageHeader, PrestageRefused, archive_header
from peerdp.content.prestage import import_archive as import_objects
from peerdp.domain import dp_states
from peerdp.dp.store import DPStore
from peerdp.machine.mp_client import Identity, MPClient, MPError, PolicyRefused, load_identity
from peerdp.machine.reporting import package_state, send_message


class ImportRefused(Exception):
    """The archive cannot be loaded on this branch DP (one line saying why and what to do)."""


@dataclass(frozen=True)
class ImportResult:
    package_id: str
    source_version: int
    files: int
    bytes: int
    already_held: bool
    reported: bool  # the site was told (else the running branch DP tells it later)
    site_problem: str = ""


def import_prestage(data_dir: Path, archive: Path, ca_file: Path | None = None) -> ImportResult:
    """Check `archive` and load it into the branch DP's store; ImportRefused if it cannot be."""
    identity = _branch_identity(data_dir)
    header = _checked_header(archive, identity)
    mp = MPClient(identity, ca_file=ca_file)
    try:
        site_problem = _check_assignment(mp, identity, header)
        store = DPStore(data_dir / "store")
        already = store.manifest(header.package_id, header.source_version) is not None
        _load(store, archive, identity, header)
        manifest = header.manifest
        result = ImportResult(
            header.package_id,
            header.source_version,
            len(manifest.files),
            manifest.total_size,
            already,
            reported=False,
            site_problem=site_problem,
        )
        if site_problem:
            return result
        detail = (
            f"prestaged from {archive.name}: {len(manifest.files)} file(s), "
            f"{manifest.total_size} bytes verified, none over the WAN"
        )
        message = package_state(*_key(header), dp_states.INSTALLED, detail)
        reported = send_message(mp, message)
        return ImportResult(**{**result.__dict__, "reported": reported})
    finally:
        mp.close()


def _key(header: PrestageHeader) -> tuple[str, int]:
    return header.package_id, header.source_version


def _branch_identity(data_dir: Path) -> Identity:
    identity = load_identity(data_dir)
    if identity is None:
        raise ImportRefused(
            f"{data_dir} holds no branch DP identity: give the data directory of "
            "`peerdp branch serve` (it registers on its first start)"
        )
    if identity.role != "branch_dp":
        raise ImportRefused(f"{data_dir} holds a {identity.role} identity, not a branch DP's")
    return identity


def _checked_header(archive: Path, identity: Identity) -> PrestageHeader:
    try:
        with open(archive, "rb") as fh:
            header = archive_header(fh, identity.public_key)
    except OSError as exc:
        raise ImportRefused(f"cannot read {archive}: {exc.strerror or exc}") from exc
    except PrestageRefused as exc:
        raise ImportRefused(f"{archive} refused, nothing stored: {exc}") from exc
    if header.site_code != identity.site_code:
        raise ImportRefused(
            f"{archive} refused, nothing stored: it was exported by site {header.site_code}, "
            f"and this branch DP belongs to site {identity.site_code}"
        )
    return header


def _check_assignment(mp: MPClient, identity: Identity, header: PrestageHeader) -> str:
    """'' if the site assigns this version to this DP; the problem if the site cannot be
    asked (the import goes on offline). ImportRefused if it assigns something else."""
    try:
        policy = mp.policy(wait=0)
    except PolicyRefused as exc:
        raise ImportRefused(f"the site's policy did not verify ({exc}). Nothing stored") from exc
    except MPError as exc:
        return str(exc)
    entry = _entry(policy, header.package_id)
    package_id, version = _key(header)
    if entry is None:
        raise ImportRefused(
            f"{package_id} is not on branch DP {identity.name}'s list, so it would delete "
            f"the content; add it first (peerdp package dp add {package_id} "
            f"{identity.dp_id}), then import again. Nothing stored"
        )
    if int(entry["source_version"]) != version:
        raise ImportRefused(
            f"the site assigns {package_id} source version {entry['source_version']} to "
            f"{identity.name}, and this archive holds version {version}; export version "
            f"{entry['source_version']} (peerdp package export {package_id} FILE). Nothing stored"
        )
    if entry.get("manifest_digest") != header.manifest.digest():
        raise ImportRefused(
            f"the archive's manifest of {package_id} v{version} is not the one the site's "
            "policy names. Nothing stored"
        )
    return ""


def _entry(policy: dict[str, Any], package_id: str) -> dict[str, Any] | None:
    for entry in policy.get("packages", []):
        if entry.get("id") == package_id:
            return dict(entry)
    return None


def _load(store: DPStore, archive: Path, identity: Identity, header: PrestageHeader) -> None:
    try:
        with open(archive, "rb") as fh:
            loaded = import_objects(fh, identity.public_key, store.objects)
        if loaded.manifest != header.manifest:
            raise ImportRefused(f"{archive} changed while it was imported; import it again")
        store.install(*_key(header), header.manifest.to_bytes())
    except PrestageRefused as exc:
        raise ImportRefused(f"{archive} refused, nothing stored: {exc}") from exc
    except (ContentError, OSError) as exc:
        raise ImportRefused(f"could not store {archive} in {store.root}: {exc}") from exc

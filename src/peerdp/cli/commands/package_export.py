"""`peerdp package export ID FILE`: a signed prestage archive for a branch DP."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect, fail
from peerdp.cli.output import print_json, say
from peerdp.cli.progress import terminal_progress
from peerdp.cli.resources import item_path
from peerdp.domain.sizes import human_size
from peerdp.transfer.download import NullProgress


def export(
    package_id: Annotated[str, typer.Argument(metavar="PACKAGE_ID", help="Package ID (PS100001).")],
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The archive to write (replaced if it exists).")
    ],
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="Source version (default: the newest)."),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write a prestage archive of a source version for a branch DP.

    It holds the version's files and its manifest signed with the site's key.
    Load it on the branch DP with `peerdp branch import FILE` (no transfer
    over the WAN).

    JSON output: {"package_id", "source_version", "file", "bytes"}.
    """
    target = file.expanduser().absolute()
    if target.is_dir():
        fail(f"{target} is a directory; give the archive's file name")
    if not target.parent.is_dir():
        fail(f"{target.parent} does not exist; create it or write the archive elsewhere")
    with connect(site) as api:
        if version is None:
            version = int(api.get(item_path("packages", package_id))["source_version"])
            if version < 1:
                fail(f"package {package_id} has no content yet: nothing to export")
        path = item_path("packages", package_id, "versions", version, "prestage")
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                bar = NullProgress() if json_out else terminal_progress("Exporting")
                written = api.download(path, out, bar)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    if json_out:
        print_json(
            {
                "package_id": package_id,
                "source_version": version,
                "file": str(target),
                "bytes": written,
            }
        )
        return
    say(
        f"Exported {package_id} source version {version} to {target} ({human_size(written)}). "
        "Load it on the branch DP with: peerdp branch import FILE",
        "green",
    )

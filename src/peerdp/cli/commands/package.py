"""`peerdp package`: packages, their source versions and content."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from peerdp.cli.commands import deployment, package_dp, package_export
from peerdp.cli.connection import JsonOption, SiteOption, admin_errors_reported, connect
from peerdp.cli.output import (
    Column,
    emit,
    plural,
    print_json,
    print_record,
    print_table,
    say,
    short,
    size,
    when,
    yes_no,
)
from peerdp.cli.resources import (
    PackageId,
    Resource,
    add_list_show_delete,
    at,
    change_item,
    create_item,
    delete_item,
    drop_unset,
    item_path,
    list_rows,
)
from peerdp.cli.upload_bar import folder_entries, send_with_progress
from peerdp.domain.sizes import human_size

PACKAGES = Resource(
    "package",
    "packages",
    "/packages",
    (
        Column("ID", "id", no_wrap=True),
        Column("Name", "name"),
        Column("Version", "source_version", justify="right"),
        Column("On demand", "on_demand", yes_no),
        Column("Auto download", "auto_download_branch", yes_no),
        Column("Updated", "updated_at", when, no_wrap=True),
        Column("Deleted", "deleted_at", when, no_wrap=True),
    ),
    numeric_id=False,
)
VERSION_COLUMNS = (
    Column("Version", "source_version", justify="right"),
    Column("Files", "file_count", justify="right"),
    Column("Size", "total_size", size, justify="right"),
    Column("Manifest digest", "manifest_digest", short(16)),
    Column("Created", "created_at", when, no_wrap=True),
)
FILE_COLUMNS = (
    Column("Path", "path"),
    Column("Size", "size", size, justify="right", no_wrap=True),
    Column("SHA-256", "sha256", short(16), no_wrap=True),
)

Folder = Annotated[
    Path,
    typer.Argument(
        metavar="FOLDER", help="The package's source folder (its files and subfolders)."
    ),
]
OnDemand = Annotated[
    bool,
    typer.Option(
        "--on-demand",
        help="Make the package available on protected DPs when requested by clients "
        "inside the protected boundaries (on-demand distribution; needs automatic download).",
    ),
]
NoAutoDownload = Annotated[
    bool,
    typer.Option(
        "--no-auto-download",
        help="Do not download the content automatically when the package is assigned "
        "to a branch DP: it waits for the administrator to prestage it (package export, "
        "then branch import on the branch DP). Not with --on-demand.",
    ),
]

app = typer.Typer(help="Packages: content, source versions and DP lists.", no_args_is_help=True)
app.add_typer(package_dp.app, name="dp")
app.command("export")(package_export.export)
app.command("status")(deployment.package_status)


def _package_body(name: str, on_demand: bool, no_auto_download: bool) -> dict[str, Any]:
    return {"name": name, "on_demand": on_demand, "auto_download_branch": not no_auto_download}


def _render_version(version: Any) -> None:
    if not version.get("changed", True):
        say(
            f"Package {version['package_id']} is unchanged: the folder is identical to "
            f"source version {version['source_version']} "
            f"({plural(version['file_count'], 'file')}, {human_size(version['total_size'])}). "
            "No new version was made; use --force to make one anyway.",
            "yellow",
        )
        return
    say(
        f"Package {version['package_id']} source version {version['source_version']}: "
        f"{plural(version['file_count'], 'file')}, {human_size(version['total_size'])}; "
        f"{plural(version['new_files'], 'file')} ({human_size(version['new_bytes'])}) "
        "new to the content library.",
        "green",
    )


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Package name.")],
    on_demand: OnDemand = False,
    no_auto_download: NoAutoDownload = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a package with no content yet (add it with `package update`)."""
    body = _package_body(name, on_demand, no_auto_download)
    create_item(site, json_out, PACKAGES.path, body, PACKAGES.render_created)


@app.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="Package name.")],
    folder: Folder,
    on_demand: OnDemand = False,
    no_auto_download: NoAutoDownload = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a package from a folder: the package and its source version 1.

    JSON output: {"package": <the package>, "version": <the source version>}.
    """
    entries = folder_entries(folder)
    with connect(site) as api:
        package = api.post(PACKAGES.path, _package_body(name, on_demand, no_auto_download))
        versions = item_path("packages", package["id"], "versions")
        try:
            # The failure is reported before the package is deleted, as it happened.
            with admin_errors_reported():
                version = send_with_progress(api, versions, entries)
        except (typer.Exit, KeyboardInterrupt):
            api.delete(item_path("packages", package["id"]))
            typer.echo(f"(package {package['id']}, made for this import, was deleted)", err=True)
            raise
        package = api.get(item_path("packages", package["id"]))
    if json_out:
        print_json({"package": package, "version": version})
        return
    say(f"Created package {package['id']} ({package['name']}).", "green")
    _render_version(version)


@app.command("update")
def update(
    package_id: PackageId,
    folder: Folder,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Make a new source version even if the folder is identical to the "
            "current one (clients then run the program again).",
        ),
    ] = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Send the folder as the package's next source version (DPs then get the update).

    A folder identical to the current source version (same files, sizes and SHA-256s)
    makes no new version: it says so and exits 0 (JSON: "changed": false). `--force`
    makes one anyway.
    """
    entries = folder_entries(folder)
    force_query = "?force=true" if force else ""
    with connect(site) as api:
        path = at(api, PACKAGES.item(package_id) + "/versions" + force_query)
        version = send_with_progress(api, path, entries)
    emit(version, json_out, _render_version)


@app.command("set")
def set_(
    package_id: PackageId,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    on_demand: Annotated[
        bool | None,
        typer.Option("--on-demand/--no-on-demand", help="Allow on-demand distribution."),
    ] = None,
    auto_download: Annotated[
        bool | None,
        typer.Option(
            "--auto-download/--no-auto-download",
            help="Download automatically when assigned to a branch DP (off: branch DPs wait "
            "for a prestage; on-demand packages need it on).",
        ),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a package's name or branch-DP options."""
    changes = drop_unset(name=name, on_demand=on_demand, auto_download_branch=auto_download)
    change_item(site, json_out, PACKAGES.item(package_id), changes)


@app.command("versions")
def versions(package_id: PackageId, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """List a package's source versions."""
    path = PACKAGES.item(package_id) + "/versions"
    list_rows(site, json_out, path, VERSION_COLUMNS, empty="No source versions yet.")


@app.command("manifest")
def manifest(
    package_id: PackageId,
    version: Annotated[int, typer.Argument(metavar="VERSION", help="Source version.", min=1)],
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show the manifest of one source version: every file's path, size and SHA-256."""
    with connect(site) as api:
        document = api.get(at(api, PACKAGES.item(package_id, "versions", version, "manifest")))
    emit(document, json_out, _render_manifest)


def _render_manifest(document: Any) -> None:
    files = document.get("files", [])
    header = {k: v for k, v in document.items() if k != "files"}
    header["files"] = len(files)
    header["total_size"] = sum(f.get("size", 0) for f in files)
    print_record(header)
    print_table(files, FILE_COLUMNS, empty="No files.")


@app.command("delete")
def delete(package_id: PackageId, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """Delete a package: its advertisements go at once, and its content is removed from
    every DP holding it (standard and branch); the package goes when they all have.

    Deleting it again retries DPs whose removal failed. JSON output: `{"deleted": PATH}`
    when it is gone at once, else the deletion with `removing_from` and each DP's row.
    """
    delete_item(site, json_out, PACKAGES.item(package_id), f"package {package_id}", _deletion)


def _deletion(answer: Any) -> None:
    say(answer["detail"], "yellow")
    print_table(answer["distribution_points"], package_dp.COLUMNS, empty="The package is on no DP.")


add_list_show_delete(app, PACKAGES, delete=False)

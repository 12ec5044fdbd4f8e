"""Upload limits count what would be stored, against a real site server.

The server runs with a 1 MiB limit on a package version's files and 50 members; a
gzip bomb, too many members or oversized tar headers answer 413 and leave nothing: no
package version, no object in the content library, no temporary file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import unique
from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site

from .admin_support import make_tar, new_package, ok, refused, upload

pytestmark = pytest.mark.slow  # real site-server processes

MIB = 1024 * 1024
LIMITS = {"PEERDP_MAX_UPLOAD_BYTES": str(MIB), "PEERDP_MAX_UPLOAD_MEMBERS": "50"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def limited_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteProcess]:
    data_dir: Path = tmp_path_factory.mktemp("limited-site")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'site.db'}"
        else:
            url = stack.enter_context(pg_schema("u"))
        server = start_site(data_dir, url, extra_env=LIMITS)
        stack.callback(server.stop)
        yield server


@pytest.fixture
def admin(limited_site: SiteProcess) -> httpx.Client:
    return limited_site.admin()


def library_files(data_dir: Path) -> set[str]:
    """Every file under the content library: objects and anything left in tmp/."""
    root = data_dir / "library"
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def refused_leaving_nothing(
    admin: httpx.Client, site: SiteProcess, body: bytes, *words: str
) -> None:
    package = new_package(admin, unique("pkg"))
    before = library_files(site.data_dir)

    refused(upload(admin, package["id"], body), 413, *words)

    assert library_files(site.data_dir) == before
    assert not [p for p in (site.data_dir / "library" / "tmp").glob("*")]
    assert ok(admin.get(f"/packages/{package['id']}/versions")) == []
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 0


def test_gzip_bomb_is_413_and_stores_nothing(
    admin: httpx.Client, limited_site: SiteProcess
) -> None:
    bomb = gzip.compress(make_tar({"zeros.bin": bytes(20 * MIB)}))
    assert len(bomb) < 100 * 1024  # far under the limit as sent

    refused_leaving_nothing(admin, limited_site, bomb, "uncompressed", str(MIB))


def test_too_many_members_is_413(admin: httpx.Client, limited_site: SiteProcess) -> None:
    archive = gzip.compress(make_tar({f"f{i:03}.txt": b"x" for i in range(60)}))

    refused_leaving_nothing(admin, limited_site, archive, "50 members")


def test_oversized_tar_headers_are_413(admin: httpx.Client, limited_site: SiteProcess) -> None:
    info = tarfile.TarInfo("a.txt")
    info.size = 1
    info.pax_headers = {"comment": "x" * (8 * MIB)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b"a"))

    refused_leaving_nothing(admin, limited_site, gzip.compress(buf.getvalue()), "headers")


def test_an_archive_at_the_limit_is_taken(admin: httpx.Client, limited_site: SiteProcess) -> None:
    # Uncompressed, the body is over 1 MiB with tar's headers: the files are what counts.
    body = make_tar({"a.bin": unique("a").encode().ljust(MIB, b"a")})
    assert len(body) > MIB
    package = new_package(admin, unique("pkg"))

    version = ok(upload(admin, package["id"], body), 201)

    assert version["total_size"] == MIB

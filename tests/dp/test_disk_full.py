"""A standard DP whose disk is full: the push answers 507 saying so, the site's DP row shows
it, and listing the DP's content still works (it writes nothing)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerdp.dp.store import DPStore
from tests.helpers.mounts import tmpfs
from tests.helpers.processes import SiteProcess, start_site

from .standard_support import Site, start_dp


def fill(directory: Path) -> None:
    """Write into `directory` until its file system has no byte left."""
    with open(directory / "filler", "wb") as fh:
        block = b"\0" * 65536
        while True:
            try:
                fh.write(block)
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    with contextlib.suppress(OSError):
        os.sync()


def test_listing_a_store_on_a_full_disk_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        store = DPStore(disk / "content")
        fill(disk)
        caplog.set_level(logging.WARNING, logger="peerdp.dp.store")
        held = store.inventory()
        assert held == {"packages": [], "objects": []}
        assert caplog.records == []  # no save was tried (it would have found no room)


@pytest.fixture(scope="module")
def site_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A site on SQLite, its disk roomy: only the DP's is small."""
    data_dir = tmp_path_factory.mktemp("site")
    server = start_site(
        data_dir,
        f"sqlite:///{data_dir / 'site.db'}",
        extra_env={"PEERDP_DISTRIBUTION_BACKOFF_S": "60"},
    )
    yield server
    server.stop()


@pytest.mark.slow
def test_a_push_to_a_full_dp_answers_507_and_the_row_says_so(
    site_server: SiteProcess, tmp_path: Path
) -> None:
    site = Site.of(site_server)
    dp_id, token = site.standard_dp()
    with tmpfs(tmp_path / "dp", size="2m") as disk:
        dp = start_dp(site_server, disk, token)
        try:
            package_id, _ = site.package({"big.bin": os.urandom(3 * 1024 * 1024)})
            site.add(package_id, dp_id)
            row = site.wait_state(package_id, dp_id, {"install_retrying", "install_failed"})
        finally:
            assert dp.stop() == 0
    detail = row["detail"]
    assert "507" in detail, detail
    assert f"the DP's store at {disk / 'content'} has no space left" in detail
    assert f"this request needs {3 * 1024 * 1024} bytes" in detail
    assert "Internal Server Error" not in detail

"""An upload to a site whose content library's disk is full: 507 saying which store and how
much room, not a bare 500; the site goes on working when room comes back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.api import ok, tar_of, unique
from tests.helpers.mounts import tmpfs
from tests.helpers.processes import start_site

pytestmark = pytest.mark.slow  # a real site server on a small disk


def test_an_upload_to_a_full_library_answers_507_naming_it(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", size="2m") as disk:
        data_dir = disk / "site"
        # The database lives elsewhere: this is about the content library's disk.
        server = start_site(data_dir, f"sqlite:///{tmp_path / 'site.db'}")
        try:
            admin = server.admin()
            package = ok(admin.post("/packages", json={"name": unique("big")}), 201)
            url = f"/packages/{package['id']}/versions"
            body = tar_of({"big.bin": os.urandom(3 * 1024 * 1024)})
            answer = admin.post(url, content=body, headers={"Content-Type": "application/x-tar"})
            assert answer.status_code == 507, answer.text
            detail = answer.json()["detail"]
            assert f"the site's content library at {data_dir / 'library'}" in detail
            assert "has no space left" in detail
            assert f"this request needs {len(body)} bytes" in detail

            small = tar_of({"small.txt": b"fits"})
            headers = {"Content-Type": "application/x-tar"}
            ok(admin.post(url, content=small, headers=headers), 201)
        finally:
            server.stop()

"""A role's ConfigError reaches the operator as the command's one-line bad-option error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.processes import peerdp_cmd

pytestmark = pytest.mark.slow  # each test runs `peerdp ... serve` as a real process


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(peerdp_cmd(*args), capture_output=True, text=True, timeout=60)


def test_site_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    done = serve("site", "serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "2")
    assert done.returncode == 2
    assert "several workers need PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


def test_standard_dp_without_token_or_identity_is_told_to_register(tmp_path: Path) -> None:
    args = ["--site", "http://127.0.0.1:9", "--data-dir", str(tmp_path), "--port", "0"]
    done = serve("dp", "serve", *args)
    assert done.returncode == 2
    assert "--token is needed the first time" in done.stderr
    assert "Traceback" not in done.stderr

"""A role's ConfigError reaches the operator as the command's one-line bad-option error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.mounts import tmpfs
from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, peerdp_cmd, stop_process

pytestmark = pytest.mark.slow  # each test runs `peerdp ... serve` as a real process


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that the error box does not wrap the long paths of a test's directory.
    env = {**os.environ, "COLUMNS": "500"}
    return subprocess.run(peerdp_cmd(*args), capture_output=True, text=True, timeout=60, env=env)


def test_site_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    done = serve("site", "serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "2")
    assert done.returncode == 2
    assert "several workers need PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


def test_site_refuses_no_workers(tmp_path: Path) -> None:
    done = serve("site", "serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "0")
    assert done.returncode == 2
    assert "--workers must be 1 or more, not 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_standard_dp_without_token_or_identity_is_told_to_register(tmp_path: Path) -> None:
    args = ["--site", "http://127.0.0.1:9", "--data-dir", str(tmp_path), "--port", "0"]
    done = serve("dp", "serve", *args)
    assert done.returncode == 2
    assert "--token is needed the first time" in done.stderr
    assert "Traceback" not in done.stderr


ROLES = {
    "site serve": ["site", "serve", "--port", "0"],
    "dp serve": ["dp", "serve", "--site", "http://127.0.0.1:9", "--port", "0"],
    "branch serve": ["branch", "serve", "--site", "http://127.0.0.1:9", "--port", "0"],
    "client run": ["client", "run", "--site", "http://127.0.0.1:9", "--once"],
}


@pytest.mark.parametrize("role", ROLES)
def test_a_data_directory_under_a_file_stops_the_role_in_one_line(
    role: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    done = serve(*ROLES[role], "--data-dir", str(tmp_path / "file" / "data"))
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'file'} is not a directory" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("role", ROLES)
def test_a_read_only_data_directory_stops_the_role_in_one_line(role: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as mounted:
        done = serve(*ROLES[role], "--data-dir", str(mounted / "data"))
    assert done.returncode == 2, done.stderr
    assert "cannot be written: read-only file system" in done.stderr
    assert str(mounted / "data") in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("role", ROLES)
def test_an_unknown_log_format_stops_the_role_in_one_line(role: str, tmp_path: Path) -> None:
    done = serve(*ROLES[role], "--data-dir", str(tmp_path / "data"), "--log-format", "xml")
    assert done.returncode == 2, done.stderr
    assert "log format 'xml' is not one of console, json" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything is written


def test_every_worker_of_a_site_logs_json_lines(tmp_path: Path) -> None:
    """`--log-format json` reaches the worker processes of `--workers 2` (PostgreSQL)."""
    with pg_schema("logs_workers") as db_url:
        args = ["--data-dir", str(tmp_path), "--db", db_url, "--port", "0", "--workers", "2"]
        process = subprocess.Popen(
            peerdp_cmd("site", "serve", *args, "--log-format", "json"),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert process.stderr is not None
        lines: list[str] = []
        warmed: set[int] = set()
        try:
            while len(warmed) < 2:
                line = process.stderr.readline()
                assert line, f"the site stopped: {''.join(lines)}"
                lines.append(line)
                event = json.loads(line)  # every line, the parent's and the workers'
                assert event["role"] == "site"
                if event["event"] == "management point caches read":
                    warmed.add(event["pid"])
        finally:
            assert stop_process(process) == 0
        assert process.pid not in warmed  # the workers' own lines


DP_ROLES = {
    "dp serve": ["dp", "serve", "--port", "0"],
    "branch serve": ["branch", "serve", "--port", "0"],
}


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    """A failure to talk to the site: one line, exit 1 (not a usage error: no box, no 2)."""
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Error: "), line
    assert "Usage" not in done.stderr and "--help" not in done.stderr
    return line


@pytest.mark.parametrize("role", DP_ROLES)
def test_an_unreachable_site_stops_a_dp_in_one_line(role: str, tmp_path: Path) -> None:
    site = ["--site", "http://127.0.0.1:9", "--token", "pde_" + "x" * 24]
    done = serve(*DP_ROLES[role], *site, "--data-dir", str(tmp_path / "dp"))
    assert "cannot reach the site at http://127.0.0.1:9" in one_line_failure(done)


@pytest.mark.parametrize("role", DP_ROLES)
def test_a_refused_enrolment_token_stops_a_dp_in_one_line(
    role: str, tmp_path: Path, site_server: SiteProcess
) -> None:
    site = ["--site", site_server.url, "--token", "pde_" + "x" * 24]
    done = serve(*DP_ROLES[role], *site, "--data-dir", str(tmp_path / "dp"))
    assert "registration refused" in one_line_failure(done)
    assert not (tmp_path / "dp").exists()

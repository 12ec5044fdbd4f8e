"""`peerdp status list` as an administrator reads it: newest first, the newest N, a narrow
table (`--wide` for every column), and an unknown `--type` refused with the types."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest

from tests.cli.support import Cli
from tests.cli.test_admin_cli import _line_reader, ok, package_with_content
from tests.helpers.api import unique
from tests.helpers.processes import peerdp_cmd

pytestmark = pytest.mark.slow  # the CLI as a process against a real site server


@pytest.fixture(scope="module")
def package_id(api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A package with five status messages: its version, then four DPs added."""
    package = package_with_content(api, tmp_path_factory.mktemp("pkg"))
    for _ in range(4):
        dp = ok(api.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}))
        ok(api.post(f"/packages/{package}/distribution-points", json={"dp_id": dp["id"]}))
    return package


def test_newest_first_and_limit_gives_the_newest(cli: Cli, package_id: str) -> None:
    every = cli.json("status", "list", "--package", package_id)
    ids = [m["id"] for m in every]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert every[-1]["type"] == "package_version_created"
    newest = cli.json("status", "list", "--package", package_id, "--limit", "2")
    assert [m["id"] for m in newest] == ids[:2]
    assert {m["type"] for m in newest} == {"dp_added_to_package"}


def test_the_table_is_narrow_unless_wide(cli: Cli, package_id: str) -> None:
    narrow = cli.ok("status", "list", "--package", package_id, COLUMNS="120")
    header = narrow.splitlines()[0].split()
    assert header == ["Time", "From", "Type", "Package", "Detail"]
    assert narrow.index("dp_added_to_package") < narrow.index("package_version_created")

    wide = cli.ok("status", "list", "--package", package_id, "--wide")
    for title in ("ID", "Severity", "Component", "DP", "Client", "State"):
        assert title in wide.splitlines()[0].split()


def test_an_unknown_type_is_refused_with_the_types(cli: Cli, package_id: str) -> None:
    refused = cli.fails("status", "list", "--type", "content_locaton_failed")
    assert refused.count("\n") == 1
    assert "'content_locaton_failed'" in refused
    for known in ("content_location_failed", "package_state", "program_failed"):
        assert known in refused
    # A known type with no message yet is an empty list, not a refusal.
    assert cli.json("status", "list", "--package", package_id, "--type", "program_failed") == []


def test_component_severity_and_until_narrow_the_list(cli: Cli, package_id: str) -> None:
    every = cli.json("status", "list", "--package", package_id)
    assert {(m["component"], m["severity"]) for m in every} == {("site", "info")}
    by_site = cli.json("status", "list", "--package", package_id, "--component", "site")
    assert [m["id"] for m in by_site] == [m["id"] for m in every]
    assert cli.json("status", "list", "--package", package_id, "--component", "client") == []
    assert len(cli.json("status", "list", "--package", package_id, "--severity", "info")) == 5
    assert cli.json("status", "list", "--package", package_id, "--severity", "error") == []

    # The messages were written moments ago: none before an hour ago, all before in an hour.
    assert cli.json("status", "list", "--package", package_id, "--until", "1h") == []
    later = cli.json("status", "list", "--package", package_id, "--until", "+1h")
    assert [m["id"] for m in later] == [m["id"] for m in every]


def test_bad_filters_are_refused_clearly(cli: Cli) -> None:
    unknown = cli.run("status", "list", "--severity", "fatal")
    assert unknown.returncode == 2 and "'fatal' is not one of" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    not_a_time = cli.run("status", "list", "--until", "yesterday")
    assert not_a_time.returncode == 2 and "is not a time" in not_a_time.stderr
    assert "cannot be followed" in cli.fails("status", "list", "--until", "1h", "--follow")


def test_follow_starts_with_the_newest_oldest_first(cli: Cli, package_id: str) -> None:
    ids = [m["id"] for m in cli.json("status", "list", "--package", package_id)]
    args = ("--package", package_id, "--limit", "3", "--follow", "--json", "--interval", "0.1")
    follower = subprocess.Popen(
        peerdp_cmd("status", "list", *args),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    next_line = _line_reader(follower)
    try:
        assert [next_line()["id"] for _ in range(3)] == sorted(ids[:3])
    finally:
        follower.send_signal(signal.SIGINT)
        follower.communicate(timeout=20)

"""Pieces of the admin CLI on their own: times, the site URL, output formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer

from peerdp.cli.connection import connect
from peerdp.cli.main import app
from peerdp.cli.output import local_time, plural
from peerdp.cli.timespec import parse_duration, parse_time
from peerdp.domain.sizes import human_size
from peerdp.domain.timestamps import rfc3339


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("2d", 172800), ("1w", 604800), ("1d12h", 129600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "-1h", "0s", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_times() -> None:
    now = datetime.now(UTC)
    assert abs(parse_time("now") - now) < timedelta(seconds=5)
    assert abs(parse_time("2h") - (now + timedelta(hours=2))) < timedelta(seconds=5)
    assert abs(parse_time("2h", durations_ago=True) - (now - timedelta(hours=2))) < timedelta(
        seconds=5
    )
    assert abs(parse_time("-1d") - (now - timedelta(days=1))) < timedelta(seconds=5)
    assert rfc3339(parse_time("2024-05-01T08:00:00+02:00")) == "2024-05-01T06:00:00Z"
    naive = parse_time("2024-05-01T08:00")
    assert naive == datetime(2024, 5, 1, 8, 0).astimezone(UTC)
    with pytest.raises(typer.BadParameter):
        parse_time("tomorrow")


def test_a_site_url_that_is_not_http_fails_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as stopped, connect("site:8080"):
        pass
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.startswith("Error: the site URL must start with http://")


def test_formatting() -> None:
    assert human_size(0) == "0 B" and human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024**3) == "5.0 GiB"
    assert plural(1, "file") == "1 file" and plural(0, "file") == "0 files"
    utc = "2024-05-01T06:00:00Z"
    assert local_time(utc) == datetime(2024, 5, 1, 6, tzinfo=UTC).astimezone().strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    assert local_time(None) == ""


GROUPS = [
    "boundary", "dp", "package", "program", "collection", "advertisement",
    "token", "client", "on-demand", "status",
]  # fmt: skip


ROOT = typer.main.get_command(app)


def _commands(group: str) -> list[list[str]]:
    """Every command path under `group` (nested groups included)."""
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(ROOT.commands[group], [group])  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("group", GROUPS)
def test_help_of_every_command(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _commands(group)
    assert len(paths) > 1, paths
    for path in paths:
        done = ROOT.main([*path, "--help"], prog_name="peerdp", standalone_mode=False)
        assert done == 0, path
        assert f"Usage: peerdp {' '.join(path)}" in capsys.readouterr().out, path


def test_a_bad_since_is_explained_as_a_time_ago() -> None:
    with pytest.raises(typer.BadParameter) as ago:
        parse_time("yesterday", durations_ago=True)
    assert "2h (the last two hours)" in str(ago.value) and "from now" not in str(ago.value)
    with pytest.raises(typer.BadParameter) as ahead:
        parse_time("tomorrow")
    assert "2h (two hours from now)" in str(ahead.value)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status", "list", "--limit", "abc"], "Invalid value for '--limit': 'abc' is not a valid"),
        (["boundary", "add", "b", "--type", "subnet", "--value", "x"], "'--type': 'subnet' is not"),
        (["status", "list", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_typers_own_refusals_name_the_option_in_words(args: list[str], words: str) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert words in result.output
    assert "Input should" not in result.output and "Value error" not in result.output

"""Every command's `--help`, rendered at a fixed width, against its snapshot.

The snapshots are `tests/cli/help_snapshots/<command words>.txt`, one file per command.
After changing a command's options or help text (or merging branches that did),
regenerate them and read the diff:

    PEERDP_UPDATE_HELP_SNAPSHOTS=1 .venv/bin/pytest tests/cli/test_help.py

Besides the snapshots, every help text is checked for what typer versions outside the
pinned range print wrongly (`<bool>` after flags, `{name}` in usage lines, choices cut
mid-word) and for "a advertisement".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.rich_utils
from typer.testing import CliRunner

from peerdp.cli.main import app

SNAPSHOTS = Path(__file__).parent / "help_snapshots"
UPDATE = os.environ.get("PEERDP_UPDATE_HELP_SNAPSHOTS") == "1"
WIDTH = 100


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _snapshot(path: tuple[str, ...]) -> Path:
    return SNAPSHOTS / ("_".join(("peerdp", *path)) + ".txt")


@pytest.fixture
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Help as a plain `WIDTH`-column terminal shows it, whatever runs the tests."""
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", WIDTH)
    monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", False)


@pytest.fixture
def narrow(fixed_width: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common 80-column terminal, where long lists of choices used to be cut."""
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 80)


def render_help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.output.splitlines()) + "\n"


@pytest.mark.usefixtures("fixed_width")
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("peerdp", *p)))
def test_help_matches_its_snapshot(path: tuple[str, ...]) -> None:
    text = render_help(path)
    snapshot = _snapshot(path)
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(text)
    assert snapshot.exists(), f"no snapshot: run with PEERDP_UPDATE_HELP_SNAPSHOTS=1 ({snapshot})"
    assert text == snapshot.read_text()


def test_every_snapshot_is_of_a_command() -> None:
    known = {_snapshot(path).name for path in COMMANDS}
    stale = sorted(p.name for p in SNAPSHOTS.glob("*.txt") if p.name not in known)
    if UPDATE:
        for name in stale:
            (SNAPSHOTS / name).unlink()
        return
    assert not stale, "snapshots of commands that no longer exist"


TYPE_NAMES = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\]|[a-z_|]+)>|\{[a-z_]+\}")
WRONG_ARTICLE = re.compile(
    r"\b[Aa] (advertisement|enrolment|on-demand|error|object|integer|address|item|IP|ID|AD)\b"
)
CHOICES = re.compile(r"\[([a-z_]+(?:\|[a-z_]+)+)")


@pytest.mark.usefixtures("narrow")
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("peerdp", *p)))
def test_help_reads_correctly(path: tuple[str, ...]) -> None:
    text = render_help(path)
    assert not TYPE_NAMES.search(text), TYPE_NAMES.search(text)
    assert not WRONG_ARTICLE.search(text), WRONG_ARTICLE.search(text)
    for listed in CHOICES.finditer(text):
        # A list of choices is shown whole, on one line: `[fast|slow]`, never `[ip_subnet|ip_r`.
        assert text[listed.end()] == "]", listed.group(0)

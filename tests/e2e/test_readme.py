"""The README's role sections document every option of the commands they show, and the
commands in its examples exist with the options they are given."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from peerdp.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"
ROLES = [
    ("site", "serve"),
    ("dp", "serve"),
    ("branch", "serve"),
    ("client", "run"),
    ("explain",),
    ("simulate",),
]


def is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")  # typer has its own copy of click: no isinstance


def command(path: tuple[str, ...]) -> Any:
    found: Any = typer.main.get_command(app)
    for name in path:
        assert is_group(found), path
        found = found.commands[name]
    return found


def options(cmd: Any) -> set[str]:
    return {opt for p in cmd.params for opt in p.opts + p.secondary_opts if opt.startswith("--")}


@pytest.mark.parametrize("path", ROLES, ids=" ".join)
def test_every_option_of_each_role_is_documented(path: tuple[str, ...]) -> None:
    text = README.read_text()
    documented = set(re.findall(r"--[a-z][a-z-]*", text))
    assert options(command(path)) - {"--help"} <= documented


def example_commands() -> list[list[str]]:
    """Every `peerdp ...` line of the README's sh blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith(("peerdp ", ".venv/bin/peerdp ")):
                commands.append(shlex.split(line)[1:])
    return commands


def test_examples_use_real_commands_and_options() -> None:
    commands = example_commands()
    assert len(commands) > 20
    for words in commands:
        cmd: Any = typer.main.get_command(app)
        while is_group(cmd) and words and words[0] in cmd.commands:
            cmd, words = cmd.commands[words[0]], words[1:]
        assert not is_group(cmd), f"no such command: peerdp {' '.join(words)}"
        used = {word.split("=")[0] for word in words if word.startswith("--")}
        assert used <= options(cmd), f"{cmd.name}: unknown {used - options(cmd)}"


def test_the_readme_says_how_to_put_peerdp_on_the_path() -> None:
    text = README.read_text()
    assert "source .venv/bin/activate" in text
    assert ".venv/bin/peerdp" in text and "PATH" in text
    assert (README.parent / "scripts" / "setup").exists()

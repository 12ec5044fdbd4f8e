"""What the demo prints: whole words at any width, and who wrote each status message."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from peerdp.demo.narrator import INDENT, Narrator

DETAIL = (
    "BR01-DP: no BITS-enabled standard DP of this site holds PS100001 version 1 yet; "
    "the request is delayed and carried out by itself as soon as one does "
    "(http://127.0.0.1:40123/content/PS100001/1/manifest)"
)


def narrated(width: int, *rows: dict[str, object]) -> str:
    out = io.StringIO()
    narrator = Narrator(Console(file=out, width=width, color_system=None))
    narrator.status_messages(rows)
    return out.getvalue()


def message(**fields: object) -> dict[str, object]:
    return {
        "type": "package_state",
        "state": "install_retrying",
        "severity": "warning",
        "component": "branch_dp",
        "source": "BR01-DP",
        "client_name": None,
        "detail": DETAIL,
        **fields,
    }


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_details_are_whole_words_at_any_width(width: int) -> None:
    text = narrated(width, message())
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert all(line.startswith(INDENT) for line in lines)
    words = text.split()
    for word in DETAIL.split():
        if len(word) < width - len(INDENT):
            assert word in words, (word, text)


def test_the_distribution_manager_is_the_site_not_a_dp() -> None:
    row = message(component="distribution", source="PS1 distribution manager")
    text = " ".join(narrated(200, row).split())
    assert "site PS1 distribution manager:" in text
    assert "DP PS1" not in text
    assert "branch DP BR01-DP:" in " ".join(narrated(200, message()).split())


def test_a_long_step_wraps_under_its_first_word() -> None:
    out = io.StringIO()
    narrator = Narrator(Console(file=out, width=50, color_system=None))
    narrator.step("Creating a package, a program, a collection and a protected-only advertisement")
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 2
    start = lines[0].index("Creating")
    assert all(line[:start].strip() == "" and line[start] != " " for line in lines[1:])
    assert "advertisement" in out.getvalue().split()

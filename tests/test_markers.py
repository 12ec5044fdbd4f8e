"""The `slow` marker is hard to forget: starting a real process from an unmarked test fails."""

from __future__ import annotations

import sys

import pytest

from tests.helpers.processes import peerdp_cmd


def test_an_unmarked_test_cannot_start_peerdp() -> None:
    with pytest.raises(RuntimeError, match="not marked slow"):
        peerdp_cmd("site", "serve")


@pytest.mark.slow
def test_a_slow_test_can() -> None:
    assert peerdp_cmd("site", "serve") == [sys.executable, "-m", "peerdp.cli.main", "site", "serve"]

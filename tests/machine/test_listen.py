"""A serving machine comes back on its last port, and tells the site when its URL moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerdp.machine.listen import LISTEN_FILE, announce_up, keep_url, listen, registered_url
from peerdp.machine.mp_client import MPError


class AnnouncingMP:
    """Records the URLs it is told (None: "up at the URL you know"); refuses if `down`."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.announced: list[str | None] = []

    def announce(self, url: str | None) -> None:
        if self.down:
            raise MPError("cannot reach the site")
        self.announced.append(url)


def test_binds_last_runs_port_and_public_url(tmp_path: Path) -> None:
    first, url = listen(tmp_path, "127.0.0.1", None, None)
    port = first.getsockname()[1]
    assert url == f"http://127.0.0.1:{port}"
    keep_url(tmp_path, url, AnnouncingMP(), print)  # type: ignore[arg-type]
    first.close()
    again, same = listen(tmp_path, "127.0.0.1", None, "http://dp.example/")
    with again:
        assert again.getsockname()[1] == port
    assert same == "http://dp.example"


def test_a_moved_url_is_announced_to_the_site(tmp_path: Path) -> None:
    (tmp_path / LISTEN_FILE).write_text(json.dumps({"url": "http://127.0.0.1:1"}))
    mp, lines = AnnouncingMP(), list[str]()
    keep_url(tmp_path, "http://127.0.0.1:2", mp, lines.append)  # type: ignore[arg-type]
    assert mp.announced == ["http://127.0.0.1:2"] and lines == []
    assert registered_url(tmp_path) == "http://127.0.0.1:2"


def test_a_move_the_site_cannot_hear_is_announced_to_the_operator(tmp_path: Path) -> None:
    (tmp_path / LISTEN_FILE).write_text(json.dumps({"url": "http://127.0.0.1:1"}))
    lines: list[str] = []
    keep_url(tmp_path, "http://127.0.0.1:2", AnnouncingMP(down=True), lines.append)  # type: ignore[arg-type]
    [line] = lines
    assert line.startswith("warning: this DP registered http://127.0.0.1:1 but now listens on")
    assert "cannot reach the site" in line
    assert registered_url(tmp_path) == "http://127.0.0.1:1"  # told again next run


def test_a_start_is_announced_and_a_site_that_cannot_hear_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mp = AnnouncingMP()
    assert announce_up(mp)  # type: ignore[arg-type]
    assert mp.announced == [None]  # up at the URL the site knows: it may be an admin's
    assert not announce_up(AnnouncingMP(down=True))  # type: ignore[arg-type]
    assert "could not tell the site this DP is up: cannot reach the site" in caplog.text

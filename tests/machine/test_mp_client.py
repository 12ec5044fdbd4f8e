"""The site URL an agent uses: the saved one, or the one given (`--site`), which replaces it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from peerdp.machine.mp_client import (
    Identity,
    MachineFacts,
    MPClient,
    MPError,
    check_enrolment_token,
    enrol,
    load_identity,
    save_identity,
)
from tests.helpers.tls import TestCA

FACTS = MachineFacts("PC-1", ("10.1.1.20",), None)
OLD = "http://site-old.example:8080"
NEW = "http://site-new.example:8080"


def _registered(data_dir: Path, url: str = OLD, ca: str | None = None) -> Identity:
    identity = Identity(
        "m-1", "secret", "AAAA", "PS1", "client", "PC-1", url, client_id=7, site_ca=ca
    )
    save_identity(data_dir, identity)
    return identity


def test_a_site_url_given_later_wins_and_is_saved(tmp_path: Path) -> None:
    registered = _registered(tmp_path)
    moved = enrol(NEW, "", FACTS, tmp_path)
    assert moved.site_url == NEW
    assert load_identity(tmp_path) == moved
    assert (moved.credential, moved.site_public_key) == (registered.credential, "AAAA")
    assert enrol(None, "", FACTS, tmp_path).site_url == NEW  # not given: the saved one
    assert enrol(NEW, "", FACTS, tmp_path) == moved  # the same: nothing to change


def test_a_ca_file_given_with_a_new_https_url_is_pinned(tmp_path: Path) -> None:
    _registered(tmp_path / "agent", ca="OLD PEM")
    ca = TestCA.create(tmp_path / "ca")
    moved = enrol("https://site-new.example", "", FACTS, tmp_path / "agent", ca_file=ca.ca_file)
    assert moved.site_ca == ca.ca_file.read_text()
    kept = enrol("https://site-newer.example", "", FACTS, tmp_path / "agent")
    assert kept.site_ca == ca.ca_file.read_text()  # no --ca-file: the pinned CA stays


def test_registering_needs_a_site_url(tmp_path: Path) -> None:
    with pytest.raises(MPError, match=r"pass --site .* and --token to register"):
        enrol(None, "pde_token", FACTS, tmp_path)
    with pytest.raises(MPError, match="pass --site"):
        check_enrolment_token(None, "pde_token", "client", tmp_path)
    assert not (tmp_path / "identity.json").exists()


def test_an_unreachable_site_is_reported_with_its_url(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    mp = MPClient(_registered(tmp_path, url))
    try:
        with pytest.raises(MPError) as failed:
            mp.policy()
    finally:
        mp.close()
    message = str(failed.value)
    assert message.startswith(f"cannot reach the management point at {url}: ")
    assert "\n" not in message

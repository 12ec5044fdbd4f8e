"""Registration over HTTPS pins the CA the site's certificate was checked with."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.machine.mp_client import MachineFacts, MPClient, MPError, enrol, load_identity
from tests.helpers.tls import TestCA

ANSWER = {
    "machine_id": "m-1",
    "credential": "secret",
    "site_public_key": "AAAA",
    "site_code": "PS1",
    "role": "client",
    "client_id": 7,
}


def fake_site(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def post(url: str, **options: Any) -> httpx.Response:
        calls.append({"url": url, **options})
        return httpx.Response(201, json=ANSWER)

    monkeypatch.setattr(httpx, "post", post)
    return calls


def test_the_ca_given_at_registration_is_pinned_and_trusted_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = TestCA.create(tmp_path / "ca")
    calls = fake_site(monkeypatch)
    facts = MachineFacts("pc1", ("10.0.0.1",), None)
    identity = enrol("https://site.example", "tok", facts, tmp_path / "m", ca_file=ca.ca_file)
    assert isinstance(calls[0]["verify"], ssl.SSLContext)
    assert identity.site_ca == ca.ca_file.read_text()
    saved = load_identity(tmp_path / "m")
    assert saved is not None and saved.site_ca == identity.site_ca

    # Later runs trust the pinned CA without being told: its certificate is in the context.
    mp = MPClient(saved)
    try:
        subjects = [cert["subject"] for cert in mp.tls.get_ca_certs()]
        assert subjects == [((("commonName", ca.name),),)]
    finally:
        mp.close()


def test_plain_http_pins_nothing_and_old_identities_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = TestCA.create(tmp_path / "ca")
    fake_site(monkeypatch)
    facts = MachineFacts("pc1", (), None)
    identity = enrol("http://site.example", "tok", facts, tmp_path / "m", ca_file=ca.ca_file)
    assert identity.site_ca is None
    saved = json.loads((tmp_path / "m" / "identity.json").read_text())
    del saved["site_ca"]  # an identity saved before TLS
    (tmp_path / "m" / "identity.json").write_text(json.dumps(saved))
    loaded = load_identity(tmp_path / "m")
    assert loaded is not None and loaded.site_ca is None


def test_an_unusable_ca_file_stops_registration_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_site(monkeypatch)
    bad = tmp_path / "ca.pem"
    bad.write_text("nothing here")
    facts = MachineFacts("pc1", (), None)
    with pytest.raises(MPError, match=r"the CA file .*ca\.pem cannot be used"):
        enrol("https://site.example", "tok", facts, tmp_path / "m", ca_file=bad)
    assert calls == []
    assert not (tmp_path / "m").exists()

"""TLS set-up: server certificates checked at start, CA files, the refused-certificate line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from peerdp.security.tls import (
    ServerCertificate,
    TLSSetupError,
    client_context,
    read_ca,
    untrusted_certificate,
)
from tests.helpers.tls import TestCA


def test_a_server_certificate_needs_its_key_and_both_must_load(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    files = ca.server(tmp_path, "dp")
    other = ca.server(tmp_path, "other")
    assert ServerCertificate.of(None, None) is None
    certificate = ServerCertificate.of(files.cert, files.key)
    assert certificate is not None
    assert certificate.uvicorn_options() == {
        "ssl_certfile": str(files.cert),
        "ssl_keyfile": str(files.key),
    }
    with pytest.raises(TLSSetupError, match="go together"):
        ServerCertificate.of(files.cert, None)
    with pytest.raises(TLSSetupError, match="cannot be used"):
        ServerCertificate.of(files.cert, other.key)  # a key that is not the certificate's
    with pytest.raises(TLSSetupError, match="cannot be used"):
        ServerCertificate.of(tmp_path / "missing.pem", files.key)


def test_a_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    assert "BEGIN CERTIFICATE" in read_ca(ca.ca_file)
    assert isinstance(client_context(ca.ca_file), ssl.SSLContext)
    assert client_context(ca_pem=read_ca(ca.ca_file)).verify_mode == ssl.CERT_REQUIRED
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(TLSSetupError, match=r"the CA file .*empty\.pem cannot be used"):
        read_ca(empty)
    with pytest.raises(TLSSetupError, match="cannot be read"):
        read_ca(tmp_path / "missing.pem")
    with pytest.raises(TLSSetupError, match="cannot be used"):
        client_context(tmp_path / "missing.pem")


def test_a_refused_certificate_is_said_in_one_line() -> None:
    refused = ssl.SSLCertVerificationError(1, "certificate verify failed")
    refused.verify_message = "unable to get local issuer certificate"
    wrapped = ConnectionError("connect failed")
    wrapped.__cause__ = refused
    assert untrusted_certificate(wrapped) == (
        "the site's certificate is not trusted: unable to get local issuer certificate "
        "(use --ca-file or PEERDP_CA_FILE)"
    )
    assert untrusted_certificate(wrapped, "the DP's").startswith("the DP's certificate")
    assert untrusted_certificate(ConnectionError("refused")) is None

"""TLS for peerdp's connections: which certificate authorities a caller trusts, the
server's certificate files, and a one-line reason when a certificate is refused.

A caller trusts the CA file it was given (`--ca-file`, PEERDP_CA_FILE) or, without one,
the system's store. A machine keeps the CA it registered with (its pinned CA, PEM text
in its identity) and trusts that for every later call to the site and to DPs.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CA_FILE_ENV = "PEERDP_CA_FILE"
CA_HINT = f"use --ca-file or {CA_FILE_ENV}"


class TLSSetupError(Exception):
    """A certificate, key or CA file cannot be used (the message says which and why)."""


def client_context(ca_file: Path | None = None, ca_pem: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the CA in `ca_pem` or `ca_file`, else the system store."""
    try:
        if ca_pem is not None:
            return ssl.create_default_context(cadata=ca_pem)
        if ca_file is not None:
            return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError, ValueError) as exc:
        where = f"the CA file {ca_file}" if ca_pem is None else "the pinned CA"
        raise TLSSetupError(f"{where} cannot be used: {_reason(exc)}") from exc
    return ssl.create_default_context()


def read_ca(ca_file: Path) -> str:
    """The PEM text of a CA file, checked to hold at least one certificate."""
    try:
        text = ca_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TLSSetupError(f"the CA file {ca_file} cannot be read: {_reason(exc)}") from exc
    try:
        ssl.create_default_context(cadata=text)  # refuses a file with no certificate in it
    except (ssl.SSLError, ValueError) as exc:
        raise TLSSetupError(f"the CA file {ca_file} cannot be used: {_reason(exc)}") from exc
    return text


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate chain and private key a server presents (PEM files)."""

    cert_file: Path
    key_file: Path

    @classmethod
    def of(cls, cert_file: Path | None, key_file: Path | None) -> ServerCertificate | None:
        """Both files, or neither (plain HTTP); each is checked to load together."""
        if cert_file is None and key_file is None:
            return None
        if cert_file is None or key_file is None:
            raise TLSSetupError("--tls-cert and --tls-key go together: give both or neither")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise TLSSetupError(
                f"the certificate {cert_file} with key {key_file} cannot be used: {_reason(exc)}"
            ) from exc
        return cls(cert_file, key_file)

    def uvicorn_options(self) -> dict[str, Any]:
        return {"ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file)}


def untrusted_certificate(
    exc: BaseException, whose: str = "the site's", hint: str = CA_HINT
) -> str | None:
    """If `exc` (or its cause) is a refused certificate, the one line that says so."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            reason = seen.verify_message or _reason(seen)
            return f"{whose} certificate is not trusted: {reason} ({hint})"
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

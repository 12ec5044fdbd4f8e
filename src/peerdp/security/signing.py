"""Ed25519 signing of policies, manifests and content access tokens.

The site holds the private key; agents pin the public key at registration and
verify everything offline with it, so a DP needs no call to the site to check
a client's access token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

# What a signed token is for: each is accepted for its own use only.
ACCESS = "access"
DISTRIBUTE = "distribute"


class SignatureError(Exception):
    """A signature or signed token did not verify."""


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise SignatureError("not valid base64url") from exc


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that is signed and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def json_digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON form, e.g. a manifest's digest."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True)
class SiteKey:
    """The site's signing key."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SiteKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> SiteKey:
        """Load the key from `path`, creating it (mode 0600) on first start."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise SignatureError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        site_key = cls.generate()
        pem = site_key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return site_key

    @property
    def public_key_b64(self) -> str:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return b64e(raw)

    def sign(self, data: bytes) -> str:
        return b64e(self.private.sign(data))

    def sign_json(self, value: Any) -> str:
        return self.sign(canonical_json(value))

    def access_token(
        self,
        package_id: str,
        source_version: int,
        subject: str,
        ttl_s: int = 3600,
        now: float | None = None,
    ) -> str:
        """A token that lets `subject` read one package version from any DP."""
        claims = {"pkg": package_id, "ver": source_version, "sub": subject}
        return self._token(ACCESS, claims, ttl_s, now)

    def distribution_token(self, dp_id: int, ttl_s: int = 600, now: float | None = None) -> str:
        """A token that lets the site's distribution manager push content to DP `dp_id`."""
        return self._token(DISTRIBUTE, {"dp": dp_id}, ttl_s, now)

    def _token(self, purpose: str, claims: dict[str, Any], ttl_s: int, now: float | None) -> str:
        issued = int(time.time() if now is None else now)
        signed = {**claims, "purpose": purpose, "exp": issued + ttl_s}
        payload = b64e(canonical_json(signed))
        return f"{payload}.{self.sign(payload.encode())}"


@dataclass(frozen=True)
class SitePublicKey:
    """The pinned public key an agent or DP verifies with."""

    public: Ed25519PublicKey

    @classmethod
    def from_b64(cls, text: str) -> SitePublicKey:
        try:
            return cls(Ed25519PublicKey.from_public_bytes(b64d(text)))
        except ValueError as exc:
            raise SignatureError("not an Ed25519 public key") from exc

    def verify(self, data: bytes, signature: str) -> None:
        try:
            self.public.verify(b64d(signature), data)
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify") from exc

    def verify_json(self, value: Any, signature: str) -> None:
        self.verify(canonical_json(value), signature)

    def access_claims(self, token: str, now: float | None = None) -> dict[str, Any]:
        """Verify a content access token and return its claims; SignatureError if not valid."""
        return self._claims(token, ACCESS, now)

    def check_distribution(
        self, token: str, dp_id: int, now: float | None = None
    ) -> dict[str, Any]:
        """Claims of a distribution token for DP `dp_id`; raise SignatureError otherwise."""
        claims = self._claims(token, DISTRIBUTE, now)
        if claims.get("dp") != dp_id:
            raise SignatureError("distribution token is for another distribution point")
        return claims

    def _claims(self, token: str, purpose: str, now: float | None) -> dict[str, Any]:
        """Verify a signed token made for `purpose` and return its claims."""
        payload, sep, signature = token.partition(".")
        if not sep or not payload or not signature:
            raise SignatureError("malformed token")
        self.verify(payload.encode(), signature)
        try:
            claims = json.loads(b64d(payload))
        except ValueError as exc:
            raise SignatureError("malformed token claims") from exc
        if not isinstance(claims, dict):
            raise SignatureError("malformed token claims")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp < (time.time() if now is None else now):
            raise SignatureError("token expired")
        if claims.get("purpose") != purpose:
            raise SignatureError(f"not a token for this use (needs purpose '{purpose}')")
        return claims

    def check_access(self, token: str, package_id: str, source_version: int) -> dict[str, Any]:
        """Claims of a token valid for this package version; raise SignatureError otherwise."""
        claims = self.access_claims(token)
        if claims.get("pkg") != package_id or claims.get("ver") != source_version:
            raise SignatureError("access token is for another package or version")
        return claims

"""The trust root: Ed25519 signatures and the signed tokens a DP checks offline.

A token is ``<payload>.<signature>``: the payload is the base64url of the canonical JSON
claims (with ``purpose`` and ``exp``), the signature is Ed25519 over the payload text.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from peerdp.security.signing import (
    SignatureError,
    SiteKey,
    SitePublicKey,
    b64d,
    b64e,
    canonical_json,
    json_digest,
)

NOW = 1_800_000_000.0
PACKAGE = "PS100001"


@pytest.fixture(scope="module")
def key() -> SiteKey:
    return SiteKey.generate()


@pytest.fixture(scope="module")
def pinned(key: SiteKey) -> SitePublicKey:
    """What an agent keeps after registering: the site's public key, from its text form."""
    return SitePublicKey.from_b64(key.public_key_b64)


def signed_payload(key: SiteKey, raw: bytes) -> str:
    """A token over arbitrary payload bytes, correctly signed: only its claims are wrong."""
    payload = b64e(raw)
    return f"{payload}.{key.sign(payload.encode())}"


def claims_of(token: str) -> dict[str, Any]:
    payload, _, _ = token.partition(".")
    claims: dict[str, Any] = json.loads(b64d(payload))
    return claims


# -- signatures ---------------------------------------------------------------------------


def test_a_signature_verifies_with_the_pinned_key_only(key: SiteKey, pinned: SitePublicKey) -> None:
    signature = key.sign(b"policy bytes")
    pinned.verify(b"policy bytes", signature)
    with pytest.raises(SignatureError):
        pinned.verify(b"policy bytes!", signature)
    other = SitePublicKey.from_b64(SiteKey.generate().public_key_b64)
    with pytest.raises(SignatureError):
        other.verify(b"policy bytes", signature)


def test_json_is_signed_in_its_canonical_form(key: SiteKey, pinned: SitePublicKey) -> None:
    value = {"b": [1, 2], "a": "ä"}
    signature = key.sign_json(value)
    pinned.verify_json({"a": "ä", "b": [1, 2]}, signature)  # key order does not matter
    with pytest.raises(SignatureError):
        pinned.verify_json({**value, "b": [2, 1]}, signature)
    assert canonical_json(value) == '{"a":"ä","b":[1,2]}'.encode()
    assert json_digest(value) == json_digest({"a": "ä", "b": [1, 2]})
    assert json_digest(value) != json_digest({"a": "a", "b": [1, 2]})


def test_base64url_round_trips_without_padding() -> None:
    for size in range(6):
        data = os.urandom(size)
        assert "=" not in b64e(data)
        assert b64d(b64e(data)) == data
    with pytest.raises(SignatureError):
        b64d("a")  # one character cannot encode a byte
    with pytest.raises(SignatureError):
        b64d("é")


# -- access tokens ------------------------------------------------------------------------


def test_access_token_round_trip(key: SiteKey, pinned: SitePublicKey) -> None:
    token = key.access_token(PACKAGE, 3, "client-7", ttl_s=60, now=NOW)
    claims = pinned.access_claims(token, now=NOW)
    assert claims == {
        "pkg": PACKAGE,
        "ver": 3,
        "sub": "client-7",
        "purpose": "access",
        "exp": int(NOW) + 60,
    }


def test_check_access_names_one_package_version(key: SiteKey, pinned: SitePublicKey) -> None:
    token = key.access_token(PACKAGE, 3, "client-7")
    assert pinned.check_access(token, PACKAGE, 3)["sub"] == "client-7"
    with pytest.raises(SignatureError, match="another package or version"):
        pinned.check_access(token, PACKAGE, 4)
    with pytest.raises(SignatureError, match="another package or version"):
        pinned.check_access(token, "PS100002", 3)


def test_an_expired_token_is_refused(key: SiteKey, pinned: SitePublicKey) -> None:
    token = key.access_token(PACKAGE, 1, "c", ttl_s=60, now=NOW)
    pinned.access_claims(token, now=NOW + 59)
    with pytest.raises(SignatureError, match="expired"):
        pinned.access_claims(token, now=NOW + 61)
    # Without `now`, the clock decides.
    old = key.access_token(PACKAGE, 1, "c", ttl_s=60, now=time.time() - 3600)
    with pytest.raises(SignatureError, match="expired"):
        pinned.check_access(old, PACKAGE, 1)


@pytest.mark.parametrize("exp", ["9999999999", 9_999_999_999.5, None, True])
def test_a_token_whose_expiry_is_not_a_whole_number_is_refused(
    key: SiteKey, pinned: SitePublicKey, exp: Any
) -> None:
    claims = {"pkg": PACKAGE, "ver": 1, "sub": "c", "purpose": "access", "exp": exp}
    if exp is None:
        del claims["exp"]
    with pytest.raises(SignatureError, match="expired"):
        pinned.access_claims(signed_payload(key, canonical_json(claims)), now=NOW)


# -- purpose and key pinning -------------------------------------------------------------


def test_a_token_for_one_purpose_is_refused_for_the_other(
    key: SiteKey, pinned: SitePublicKey
) -> None:
    distribute = key.distribution_token(5, now=NOW)
    with pytest.raises(SignatureError, match="purpose 'access'"):
        pinned.access_claims(distribute, now=NOW)
    access = key.access_token(PACKAGE, 1, "c", now=NOW)
    with pytest.raises(SignatureError, match="purpose 'distribute'"):
        pinned.check_distribution(access, 5, now=NOW)


def test_a_token_without_a_purpose_is_refused(key: SiteKey, pinned: SitePublicKey) -> None:
    token = signed_payload(key, canonical_json({"pkg": PACKAGE, "ver": 1, "exp": int(NOW) + 60}))
    with pytest.raises(SignatureError, match="purpose"):
        pinned.access_claims(token, now=NOW)


def test_distribution_token_is_for_one_dp(key: SiteKey, pinned: SitePublicKey) -> None:
    token = key.distribution_token(5, ttl_s=600, now=NOW)
    assert pinned.check_distribution(token, 5, now=NOW) == {
        "dp": 5,
        "purpose": "distribute",
        "exp": int(NOW) + 600,
    }
    with pytest.raises(SignatureError, match="another distribution point"):
        pinned.check_distribution(token, 6, now=NOW)
    with pytest.raises(SignatureError, match="expired"):
        pinned.check_distribution(token, 5, now=NOW + 601)


def test_a_token_signed_by_another_key_is_refused(pinned: SitePublicKey) -> None:
    impostor = SiteKey.generate()
    with pytest.raises(SignatureError, match="does not verify"):
        pinned.access_claims(impostor.access_token(PACKAGE, 1, "c", now=NOW), now=NOW)
    with pytest.raises(SignatureError, match="does not verify"):
        pinned.check_distribution(impostor.distribution_token(5, now=NOW), 5, now=NOW)


# -- tampering ---------------------------------------------------------------------------


def test_changed_claims_under_the_old_signature_are_refused(
    key: SiteKey, pinned: SitePublicKey
) -> None:
    token = key.access_token(PACKAGE, 1, "c", ttl_s=60, now=NOW)
    _, _, signature = token.partition(".")
    for change in ({"ver": 2}, {"pkg": "PS100002"}, {"exp": int(NOW) + 10**6}, {"sub": "d"}):
        forged = b64e(canonical_json({**claims_of(token), **change})) + "." + signature
        with pytest.raises(SignatureError, match="does not verify"):
            pinned.access_claims(forged, now=NOW)


def test_a_changed_signature_is_refused(key: SiteKey, pinned: SitePublicKey) -> None:
    token = key.access_token(PACKAGE, 1, "c", now=NOW)
    payload, _, signature = token.partition(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    for bad in (flipped, signature[:-2], signature + "AA", key.sign(b"something else")):
        with pytest.raises(SignatureError):
            pinned.access_claims(f"{payload}.{bad}", now=NOW)


# -- malformed input: the module's error, never another exception -------------------------


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.", ".abc", "a.b", "é.é", "!!!!.!!!!", "a.b.c", "x" * 5000 + ".y"],
)
def test_malformed_tokens_raise_signature_error(pinned: SitePublicKey, token: str) -> None:
    with pytest.raises(SignatureError):
        pinned.access_claims(token, now=NOW)
    with pytest.raises(SignatureError):
        pinned.check_distribution(token, 1, now=NOW)


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"1e999999", b""])
def test_signed_claims_that_are_not_an_object_raise_signature_error(
    key: SiteKey, pinned: SitePublicKey, raw: bytes
) -> None:
    with pytest.raises(SignatureError):
        pinned.access_claims(signed_payload(key, raw), now=NOW)


@pytest.mark.parametrize("text", ["", "a", "é", "AAAA", b64e(b"x" * 31), b64e(b"x" * 33)])
def test_a_public_key_of_the_wrong_shape_raises_signature_error(text: str) -> None:
    with pytest.raises(SignatureError):
        SitePublicKey.from_b64(text)


# -- the key file ------------------------------------------------------------------------


def test_key_file_is_created_private_once_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site-key.pem"
    first = SiteKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SiteKey.load_or_create(path)
    assert again.public_key_b64 == first.public_key_b64
    token = again.access_token(PACKAGE, 1, "c", now=NOW)
    SitePublicKey.from_b64(first.public_key_b64).access_claims(token, now=NOW)


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site-key.pem"
    path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SignatureError, match="Ed25519"):
        SiteKey.load_or_create(path)

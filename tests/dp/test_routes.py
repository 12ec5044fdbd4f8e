"""The /content routes against a real uvicorn server: lookups through the manifest,
path traversal, access tokens and methods."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

import httpx
import pytest

from peerdp.dp.branch import content_app
from peerdp.dp.http.response import DEFAULT_CHUNK_SIZE, TLS_CHUNK_SIZE
from peerdp.dp.standard import create_dp_app
from peerdp.dp.store import DPStore
from peerdp.machine.mp_client import Identity
from peerdp.security.signing import SiteKey

from .support import (
    DP_SECRET,
    LAST_MODIFIED,
    OTHER_PACKAGE,
    PACKAGE,
    VERSION,
    Server,
    add_version,
    assert_error,
    object_path,
    put_object,
    sha256,
)


def test_token_in_query_string(server: Server) -> None:
    resp = httpx.get(server.url("dir/small.txt"), params={"token": server.token()})
    assert resp.status_code == 200
    assert resp.content == server.files["dir/small.txt"]


def test_manifest_served_byte_for_byte(server: Server, client: httpx.Client) -> None:
    url = f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp.content == server.manifest
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["etag"] == f'"{sha256(server.manifest)}"'
    assert resp.headers["last-modified"] == LAST_MODIFIED
    head = client.head(url)
    assert head.headers["content-length"] == str(len(server.manifest))


# -- not found ----------------------------------------------------------------


def test_unknown_package_version_and_path(server: Server) -> None:
    cases = [
        (server.url("big.bin", package_id="PS1FFFFF"), server.token("PS1FFFFF")),
        (server.url("big.bin", version=2), server.token(version=2)),
        (f"{server.base_url}/content/{PACKAGE}/2/manifest", server.token(version=2)),
        (server.url("nope.bin"), server.token()),
        (server.url("dir"), server.token()),
    ]
    for url, token in cases:
        assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)


def test_listed_but_unverified_file_is_404(server: Server, client: httpx.Client) -> None:
    data = b"not downloaded yet"
    add_version(server.root, PACKAGE, 3, {"later.bin": data}, store=False)
    url = server.url("later.bin", version=3)
    token = server.token(version=3)
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)
    # A partial object (wrong size) is not served either.
    path = put_object(server.root, data)
    path.write_bytes(data[:5])
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)
    path.write_bytes(data)
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).content == data


# -- traversal ----------------------------------------------------------------


def raw_get(server: Server, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {server.token()}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


PASSWD = Path("/etc/passwd").read_bytes()


@pytest.mark.parametrize(
    "tail",
    [
        "../../../../../../etc/passwd",
        "dir/../big.bin",  # would resolve to a listed file: still refused
        "./big.bin",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "dir%2Fsmall.txt",  # encoded separator, even onto a listed file
        "dir%5csmall.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "..%5c..%5c..%5cetc%5cpasswd",
        "big.bin%00.txt",
        "dir//small.txt",
    ],
)
def test_traversal_is_404(server: Server, tail: str) -> None:
    status, body = raw_get(server, f"/content/{PACKAGE}/{VERSION}/files/{tail}")
    assert status == 404, (tail, body[:200])
    assert b"root:" not in body
    assert b'"detail"' in body


def test_traversal_in_package_and_version_segments(server: Server) -> None:
    for path in (
        f"/content/..%2F..%2Fetc/{VERSION}/files/passwd",
        f"/content/{PACKAGE}/..%2F..%2F/files/passwd",
        f"/content/{PACKAGE}/{VERSION}/files/../manifest",
    ):
        status, body = raw_get(server, path)
        assert status in (403, 404), path  # the token names PS100001 v1 only
        assert b"root:" not in body


def test_planted_symlinks_are_not_followed(server: Server, tmp_path: Path) -> None:
    """A manifest entry whose object is a symlink to /etc/passwd answers 404."""
    digest = sha256(PASSWD)
    add_version(server.root, PACKAGE, 4, {"passwd.bin": PASSWD}, store=False)
    link = object_path(server.root, digest)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc/passwd")
    headers = {"Authorization": f"Bearer {server.token(version=4)}"}
    resp = httpx.get(server.url("passwd.bin", version=4), headers=headers)
    assert_error(resp, 404)
    assert b"root:" not in resp.content
    # A symlinked fan-out directory is refused as well.
    link.unlink()
    link.parent.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / digest).write_bytes(PASSWD)
    link.parent.symlink_to(elsewhere, target_is_directory=True)
    try:
        resp = httpx.get(server.url("passwd.bin", version=4), headers=headers)
        assert_error(resp, 404)
        assert b"root:" not in resp.content
    finally:
        link.parent.unlink()


# -- access tokens ------------------------------------------------------------


def test_missing_token_401(server: Server) -> None:
    for url in (server.url("big.bin"), f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"):
        resp = httpx.get(url)
        assert_error(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    resp = httpx.get(server.url("big.bin"), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(resp, 401)


def forged_token(server: Server) -> str:
    from peerdp.security.signing import SiteKey

    return SiteKey.generate().access_token(PACKAGE, VERSION, "mallory")


@pytest.mark.parametrize("kind", ["forged", "garbage", "other_package", "other_version", "expired"])
def test_bad_token_403(server: Server, kind: str) -> None:
    token = {
        "forged": lambda: forged_token(server),
        "garbage": lambda: "not.a-token",
        "other_package": lambda: server.token(OTHER_PACKAGE),
        "other_version": lambda: server.token(version=VERSION + 1),
        "expired": lambda: server.token(ttl_s=60, now=time.time() - 3600),
    }[kind]()
    for url in (server.url("big.bin"), f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"):
        assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 403)
        assert httpx.head(url, params={"token": token}).status_code == 403


def test_token_for_other_package_works_there_only(server: Server) -> None:
    token = server.token(OTHER_PACKAGE)
    ok = httpx.get(server.url("other.bin", package_id=OTHER_PACKAGE), params={"token": token})
    assert ok.content == b"other package"


def test_dp_credential_hook(server: Server) -> None:
    resp = httpx.get(server.url("dir/small.txt"), headers={"Authorization": f"Bearer {DP_SECRET}"})
    assert resp.status_code == 200
    resp = httpx.get(server.url("dir/small.txt"), headers={"Authorization": "Bearer dp-wrong"})
    assert resp.status_code == 403


def test_other_methods_refused(server: Server, client: httpx.Client) -> None:
    assert client.post(server.url("big.bin")).status_code == 405
    assert client.delete(server.url("big.bin")).status_code == 405


# -- body pieces under TLS ------------------------------------------------------------


@pytest.mark.parametrize("role", ["standard_dp", "branch_dp"])
def test_a_dp_serving_https_sends_smaller_body_pieces(tmp_path: Path, role: str) -> None:
    # Each TLS stream also holds OpenSSL's encrypted copy of its piece: 50 downloads with
    # 1 MiB pieces took the DP to about 190 MiB (bench/content.md).
    identity = Identity(
        machine_id="m1",
        credential="c",
        site_public_key=SiteKey.generate().public_key_b64,
        site_code="PS1",
        role=role,
        name="DP01",
        site_url="http://127.0.0.1:9",
        dp_id=1,
    )
    build = create_dp_app if role == "standard_dp" else content_app
    store = DPStore(tmp_path / role)
    served = {
        tls: build(store, identity, 10, tls=tls).state.content_service.options.chunk_size
        for tls in (False, True)
    }
    assert served == {False: DEFAULT_CHUNK_SIZE, True: TLS_CHUNK_SIZE}
    assert TLS_CHUNK_SIZE < DEFAULT_CHUNK_SIZE

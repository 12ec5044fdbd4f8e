"""What a DP serves, counted for /metrics: body bytes and requests by package (on the
streaming and the sendfile path alike), refusals by status without a package label."""

from __future__ import annotations

import socket
import struct

import httpx
from prometheus_client import REGISTRY

from tests.helpers.api import wait_for

from .support import OTHER_PACKAGE, PACKAGE, VERSION, Server


def served_bytes(package_id: str = PACKAGE) -> float:
    return (
        REGISTRY.get_sample_value("peerdp_dp_served_bytes_total", {"package_id": package_id}) or 0
    )


def served_requests(status: int, package_id: str = PACKAGE) -> float:
    labels = {"package_id": package_id, "status": str(status)}
    return REGISTRY.get_sample_value("peerdp_dp_served_requests_total", labels) or 0


def refused(status: int) -> float:
    labels = {"status": str(status)}
    return REGISTRY.get_sample_value("peerdp_dp_refused_requests_total", labels) or 0


def test_bodies_are_counted_in_bytes_and_requests_by_package(
    server: Server, client: httpx.Client
) -> None:
    size = len(server.files["big.bin"])
    bytes_before, whole_before = served_bytes(), served_requests(200)
    assert client.get(server.url("big.bin")).status_code == 200
    wait_for("the whole file counted", lambda: served_requests(200) == whole_before + 1)
    assert served_bytes() == bytes_before + size

    bytes_before, ranged_before = served_bytes(), served_requests(206)
    ranged = client.get(server.url("big.bin"), headers={"Range": "bytes=1000-1999"})
    assert ranged.status_code == 206
    wait_for("the range counted", lambda: served_requests(206) == ranged_before + 1)
    assert served_bytes() == bytes_before + 1000

    # Several ranges: the multipart body as sent, part headers included.
    bytes_before, ranged_before = served_bytes(), served_requests(206)
    parts = client.get(server.url("big.bin"), headers={"Range": "bytes=0-9,-20"})
    wait_for("the parts counted", lambda: served_requests(206) == ranged_before + 1)
    assert served_bytes() == bytes_before + int(parts.headers["content-length"])


def test_manifests_heads_and_conditional_answers_are_requests_without_bytes_or_with_theirs(
    server: Server, client: httpx.Client
) -> None:
    bytes_before, ok_before = served_bytes(), served_requests(200)
    assert client.head(server.url("big.bin")).status_code == 200
    manifest = client.get(f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest")
    wait_for("both counted", lambda: served_requests(200) == ok_before + 2)
    assert served_bytes() == bytes_before + len(manifest.content)

    etag = manifest.headers["etag"]
    not_modified_before = served_requests(304)
    again = client.get(
        f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest",
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    assert served_requests(304) == not_modified_before + 1


def test_refusals_count_by_status_and_never_label_a_package_they_name(server: Server) -> None:
    no_token, unknown = refused(401), refused(404)
    assert httpx.get(server.url("big.bin")).status_code == 401
    made_up = "PS1ABCDE"
    token = server.token(made_up)
    answer = httpx.get(server.url("big.bin", package_id=made_up), headers=auth(token))
    assert answer.status_code == 404
    assert refused(401) == no_token + 1 and refused(404) == unknown + 1
    assert (
        REGISTRY.get_sample_value("peerdp_dp_served_bytes_total", {"package_id": made_up}) is None
    )


def test_each_package_has_its_own_count(server: Server) -> None:
    ours, theirs = served_bytes(), served_bytes(OTHER_PACKAGE)
    token = server.token(OTHER_PACKAGE, 1)
    answer = httpx.get(server.url("other.bin", OTHER_PACKAGE, 1), headers=auth(token))
    assert answer.status_code == 200
    wait_for("counted", lambda: served_bytes(OTHER_PACKAGE) == theirs + len(answer.content))
    assert served_bytes() == ours


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_transfer_cut_short_counts_the_bytes_that_went_out(server: Server) -> None:
    """A client that reads a little of the big file and goes away: the answer is counted
    once, with fewer bytes than the file (the sendfile path reports how far it got)."""
    size = len(server.files["big.bin"])
    bytes_before, whole_before = served_bytes(), served_requests(200)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        path = f"/content/{PACKAGE}/{VERSION}/files/big.bin"
        auth = f"Authorization: Bearer {server.token()}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: dp\r\n{auth}\r\n\r\n".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        # Closed with unread bytes: the kernel resets the connection.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_for("the cut answer counted", lambda: served_requests(200) == whole_before + 1)
    # Nothing, if the reset came before the first body byte; never the whole file.
    assert 0 <= served_bytes() - bytes_before < size

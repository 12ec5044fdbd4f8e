"""The site's transfer limit for a DP reaches the running DP process through its policy;
the process's own --max-transfers overrides it, and `dp show` shows what is in force."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.security.signing import SiteKey
from tests.dp.standard_support import DPProcess, Site, start_dp
from tests.dp.support import stalled_download
from tests.helpers.api import ok, unique, wait_for
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # a real site server and `peerdp dp serve` processes

BIG = bytes(range(256)) * 32 * 1024  # 8 MiB: a stalled reader keeps its transfer slot


@pytest.fixture
def site(site_server: SiteProcess) -> Site:
    return Site.of(site_server)


@pytest.fixture
def dps() -> Iterator[list[DPProcess]]:
    started: list[DPProcess] = []
    yield started
    for process in started:
        process.stop()


def serving(site: Site, dps: list[DPProcess], tmp: Path, *args: str) -> tuple[int, DPProcess, str]:
    """A standard DP process holding an 8 MiB file; its id, process and the file's path."""
    dp_id, token = site.standard_dp()
    dp = start_dp(site.server, tmp / unique("dp"), token, *args)
    dps.append(dp)
    package_id, version = site.package({"big.bin": BIG})
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    return dp_id, dp, f"/content/{package_id}/{version}/files/big.bin"


def token_for(site: Site, path: str) -> str:
    _, _, package_id, version, *_ = path.split("/")
    key = SiteKey.load_or_create(site.server.data_dir / "site-key.pem")
    return key.access_token(package_id, int(version), "tester")


def status_of(dp: DPProcess, path: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Range": "bytes=0-0"}
    return httpx.get(dp.url + path, headers=headers, timeout=10).status_code


def shown(site: Site, dp_id: int) -> dict[str, Any]:
    row: dict[str, Any] = ok(site.admin.get(f"/distribution-points/{dp_id}"))
    return row


def test_dp_set_max_transfers_reaches_a_running_dp(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp, path = serving(site, dps, tmp_path)
    token = token_for(site, path)
    row = shown(site, dp_id)
    assert (row["max_transfers"], row["max_transfers_override"]) == (None, None)
    assert row["max_transfers_in_force"] is None  # a standard DP: no limit by default
    with stalled_download(dp.url, path, token):
        assert status_of(dp, path, token) == 206  # a standard DP has no limit by default

        # `dp set ID --max-transfers 1`: the running DP learns it through its policy.
        ok(site.admin.patch(f"/distribution-points/{dp_id}", json={"max_transfers": 1}))
        assert shown(site, dp_id)["max_transfers_in_force"] == 1
        wait_for("503 beyond the site's limit", lambda: status_of(dp, path, token) == 503)
        busy = httpx.get(dp.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert busy.status_code == 503 and busy.headers["retry-after"]
        assert "1 transfers" in busy.json()["detail"]

        ok(site.admin.patch(f"/distribution-points/{dp_id}", json={"max_transfers": 2}))
        wait_for("a second transfer allowed", lambda: status_of(dp, path, token) == 206)


def test_the_dps_own_max_transfers_overrides_the_sites(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp, path = serving(site, dps, tmp_path, "--max-transfers", "1")
    ok(site.admin.patch(f"/distribution-points/{dp_id}", json={"max_transfers": 5}))
    row = wait_for(
        "the DP's override reported",
        lambda: (r := shown(site, dp_id))["max_transfers_override"] == 1 and r,
    )
    assert (row["max_transfers"], row["max_transfers_in_force"]) == (5, 1)
    token = token_for(site, path)
    with stalled_download(dp.url, path, token):
        assert status_of(dp, path, token) == 503
    settings = site.messages(dp_id=dp_id, type="dp_settings")
    assert settings and "--max-transfers" in settings[-1]["detail"]

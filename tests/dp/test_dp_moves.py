"""A DP that comes back on another port tells the site, so clients are not sent astray."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dp.standard_support import Site, start_dp
from tests.helpers.api import ok, wait_for
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # real site server and DP processes


def test_a_dp_restarted_on_another_port_announces_its_new_url(
    site_server: SiteProcess, tmp_path: Path
) -> None:
    site = Site.of(site_server)
    dp_id, token = site.standard_dp()
    first = start_dp(site_server, tmp_path, token)
    assert ok(site.admin.get(f"/distribution-points/{dp_id}"))["url"] == first.url
    assert first.stop() == 0
    # The identity is kept; the old port is not asked for: it must move.
    moved = start_dp(site_server, tmp_path, None, "--port", "0")
    try:
        assert moved.url != first.url
        wait_for(
            "the site to learn the DP's new URL",
            lambda: ok(site.admin.get(f"/distribution-points/{dp_id}"))["url"] == moved.url,
        )
        [message] = site.messages(dp_id=dp_id, type="dp_url_changed")
        assert moved.url in message["detail"] and first.url in message["detail"]
    finally:
        moved.stop()

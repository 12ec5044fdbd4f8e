"""The seed's flow read from the roles' logs and metrics, with real processes only.

A site server, a standard DP (`peerdp dp serve`), a branch DP and two clients, all
logging JSON lines (the site and the standard DP through PEERDP_LOG_FORMAT, the branch
DP and the clients through --log-format): every line each one writes on stderr is one
JSON object, and each role logs its decisions and transfers with the package, version,
DP and client as fields. The branch DP's pull is slowed by its bandwidth limit, so its
/metrics is read mid-way: bytes pulled so far, not only at the end. At the end the
branch DP's metrics show the proof of the feature: one copy over the WAN, two over the
LAN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dp.branch_support import World, build
from tests.helpers.api import wait_for
from tests.helpers.processes import SiteProcess, start_site
from tests.machine.support import run_client

pytestmark = pytest.mark.slow  # a whole site of real processes

BIG = 600_000  # pulled at 100,000 bytes/s: about 6 s, long enough to look mid-way


@pytest.fixture
def json_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SiteProcess]:
    """A site server whose log, and that of every process started here, is JSON lines
    (PEERDP_LOG_FORMAT reaches the processes through the environment)."""
    monkeypatch.setenv("PEERDP_LOG_FORMAT", "json")
    data_dir = tmp_path / "site"
    site = start_site(data_dir, f"sqlite:///{data_dir / 'site.db'}")
    yield site
    site.stop()


def events(lines: list[str], who: str) -> list[dict[str, Any]]:
    """Every line is one JSON object (nothing printed beside the log); the objects."""
    out = []
    for line in (line for line in lines if line.strip()):
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{who} wrote a line that is not JSON: {line!r}") from None
    return out


def find(found: list[dict[str, Any]], event: str, **fields: Any) -> dict[str, Any]:
    """The first event named `event` whose fields include `fields`."""
    for item in found:
        if item["event"] == event and all(item.get(k) == v for k, v in fields.items()):
            return item
    named = [item for item in found if item["event"] == event]
    raise AssertionError(f"no {event!r} with {fields}; those named so: {named}")


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def client_run(
    w: World, name: str, data_dir: Path, *extra: str
) -> tuple[int, list[dict[str, Any]], str]:
    """`client run --once --log-format json EXTRA`: exit code, log events, stdout."""
    done = run_client([*w.client_args(name, data_dir), "--log-format", "json", *extra])
    return done.returncode, events(done.stderr.splitlines(), f"client {name}"), done.stdout


def test_each_role_logs_the_seed_flow_and_the_branch_dp_counts_wan_and_lan_bytes(
    json_site: SiteProcess, tmp_path: Path
) -> None:
    assert os.environ["PEERDP_LOG_FORMAT"] == "json"
    w = build(json_site, tmp_path, files={"big.bin": os.urandom(BIG)}, real_standard_dp=True)
    try:
        flow(w, tmp_path, json_site)
    finally:
        w.close()


def flow(w: World, tmp_path: Path, site: SiteProcess) -> None:
    assert w.manifest is not None
    package, version, total = w.package_id, w.version, w.manifest.total_size
    ids = {"package_id": package, "source_version": version}
    standard_name, branch_name = f"{w.tag}-std", f"{w.tag}-br-dp"
    first, second = f"{w.tag}-pc1", f"{w.tag}-pc2"
    w.add_member(first)
    w.add_member(second)
    branch = w.start_branch(
        tmp_path / "branch", "--log-format", "json", "--bandwidth-limit", "100000"
    )

    # The first attempt fails: the MP adds the branch DP on demand.
    code, client_log, _ = client_run(w, first, tmp_path / "pc1", "--verbose")
    assert code == 1
    missed = find(client_log, "content not located", **ids, reason="on_demand_triggered")
    assert missed["role"] == "client" and missed["client"] == first
    assert missed["advertisement_id"] == w.advertisement["id"]
    find(client_log, "status reported", type="content_location_failed", **ids)

    # The pull, seen mid-way in the branch DP's metrics.
    pulled_key = ("peerdp_branch_pulled_bytes_total", ())
    mid = wait_for("bytes pulled", lambda: (m := metrics(branch.url))[pulled_key] > 0 and m)
    assert 0 < mid[pulled_key] < total
    assert mid[("peerdp_branch_pull_size_bytes", ())] == total
    assert 0 < mid[("peerdp_branch_pull_done_bytes", ())] < total
    assert w.branch_row()["state"] != "installed"  # type: ignore[index]
    w.wait_branch_state("installed", timeout=60)

    # Both clients get it from the branch DP over the LAN.
    code, client_log, _ = client_run(w, first, tmp_path / "pc1", "--verbose")
    assert code == 0
    located = find(client_log, "content located", **ids)
    assert located["dps"][0].startswith(branch_name)
    find(client_log, "download verified", **ids, bytes_by_source={branch_name: total})
    started = find(client_log, "program started", **ids, program="install")
    assert started["client"] == first
    exited = find(client_log, "program exited", **ids, exit_code=0, timed_out=False)
    assert exited["duration_s"] >= 0
    find(client_log, "advertisement evaluated", **ids, result="succeeded", exit_code=0)
    # Without --verbose, --once prints its outcome and logs nothing that repeats it.
    code, other_log, printed = client_run(w, second, tmp_path / "pc2")
    assert code == 0 and printed.startswith(f"succeeded: advertisement {w.advertisement['id']}")
    assert other_log == []

    # The proof: one copy over the WAN, two served on the LAN (and their manifests).
    after = metrics(branch.url)
    assert after[pulled_key] == total
    served = after[("peerdp_dp_served_bytes_total", (("package_id", package),))]
    assert 2 * total <= served < 2 * total + 20_000
    assert (
        after[("peerdp_dp_served_requests_total", (("package_id", package), ("status", "200")))]
        >= 4
    )
    assert after[("peerdp_branch_pull_size_bytes", ())] == 0

    # The branch DP: its policy, the pull and its publication, the state it reported.
    branch_log = events(branch.lines, "branch DP")
    pull = find(branch_log, "pull started", **ids, attempt=1, bytes_total=total)
    assert pull["sources"] == [standard_name]
    assert pull["role"] == "branch_dp" and pull["dp"] == branch_name
    find(branch_log, "download started", **ids, bytes_total=total, sources=[standard_name])
    find(branch_log, "download verified", **ids, network_bytes=total)
    find(branch_log, "package published", **ids, network_bytes=total, files=2)
    find(branch_log, "status reported", type="package_state", **ids, state="installed")
    assert any(f"peerdp branch {branch_name} listening on" in e["event"] for e in branch_log)

    # The standard DP: the version the distribution manager pushed, published.
    standard = next(agent for agent in w.agents if agent is not branch)
    standard_log = events(standard.lines, "standard DP")
    published = find(standard_log, "package published", **ids, files=2, bytes_total=total)
    assert published["role"] == "standard_dp" and published["dp"] == standard_name

    # The site: the push, each DP state change, and the on-demand provisioning.
    site_log = events(site.lines, "site server")
    push = find(site_log, "push started", **ids, dp=standard_name)
    assert push["role"] == "site" and push["bytes_total"] == total
    find(
        site_log,
        "status message",
        type="on_demand_triggered",
        **ids,
        client_name=first,
        dp_id=w.branch_dp["id"],
    )
    find(site_log, "status message", type="package_state", **ids, state="installed",
         dp_id=w.standard_dp["id"])  # fmt: skip
    find(site_log, "status message", type="package_state", **ids, state="installed",
         dp_id=w.branch_dp["id"])  # fmt: skip
    find(site_log, "status message", type="program_succeeded", **ids, client_name=second)

"""Benchmark (c), end to end: a real `peerdp branch serve` pulling a package, against curl
fetching the same file from the same standard DP.

    .venv/bin/python bench/bench_branch_pull.py [--mib 1024] [--rounds 3]

Starts a site server (SQLite), a BITS-enabled standard DP (`peerdp dp serve`) and a branch
DP (`peerdp branch serve`), uploads a package of one file and stages it on the standard
DP. Then, round after round: curl fetches the file from the standard DP, and the branch DP
is added to the package's DP list; the time counts until the site lists the branch DP's
row as `installed` (the branch DP woke on its policy, fetched the manifest, pulled and
verified the file, made it durable, published it and reported). Then the branch DP is
removed from the package (it deletes the content) before the next round.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_content import MIB

from peerdp.admin_client import AdminClient, checked_folder, send_folder
from peerdp.demo.fleet import Fleet
from peerdp.security.signing import SiteKey


def wait_for(done: Callable[[], bool], what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)  # the site answers each poll: polling faster takes CPU from the pull


def make_folder(path: Path, mib: int) -> None:
    path.mkdir(parents=True)
    block = os.urandom(16 * MIB)
    with (path / "big.bin").open("wb") as fh:
        for i in range(mib // 16):
            fh.write(i.to_bytes(8, "little") + block[8:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="peerdp-bench-"))
    (root / "logs").mkdir()
    fleet = Fleet(root / "logs", env={"PEERDP_ADMIN_TOKEN": secrets.token_urlsafe(16)})
    try:
        db = f"sqlite:///{root / 'site' / 'site.db'}"
        site = fleet.start(
            "site", ["site", "serve", "--data-dir", str(root / "site"), "--db", db, "--port", "0"]
        )
        api = AdminClient(site.url, fleet.env["PEERDP_ADMIN_TOKEN"])
        branch_net = api.post(
            "/boundaries", {"name": "BRANCH", "type": "ip_subnet", "value": "10.1.1.0/24"}
        )
        std = api.post(
            "/distribution-points", {"name": "HQ-DP", "kind": "standard", "bits_enabled": True}
        )
        branch = api.post(
            "/distribution-points",
            {"name": "BR-DP", "kind": "branch", "protected_boundary_ids": [branch_net["id"]]},
        )

        def token(role: str, dp_id: int) -> str:
            body = {"role": role, "dp_id": dp_id, "max_uses": 1}
            return str(api.post("/enrolment-tokens", body)["token"])

        std_token, branch_token = token("standard_dp", std["id"]), token("branch_dp", branch["id"])
        std_args = ["dp", "serve", "--site", site.url, "--token", std_token]
        std_args += ["--data-dir", str(root / "hq-dp"), "--name", "HQ-DP"]
        std_dp = fleet.start("standard-dp", std_args)
        branch_args = ["branch", "serve", "--site", site.url, "--token", branch_token]
        branch_args += ["--data-dir", str(root / "br-dp"), "--name", "BR-DP"]
        fleet.start("branch-dp", [*branch_args, "--ip-address", "10.1.1.10"])
        package = api.post("/packages", {"name": "bench", "on_demand": False})
        pid = package["id"]
        make_folder(root / "content", opts.mib)
        version = send_folder(api, f"/packages/{pid}/versions", checked_folder(root / "content"))
        shutil.rmtree(root / "content")
        rows = f"/packages/{pid}/distribution-points"

        def state(dp_id: int) -> str | None:
            found = [r["state"] for r in api.get(rows) if r["dp_id"] == dp_id]
            return found[0] if found else None

        api.post(rows, {"dp_id": std["id"]})
        wait_for(lambda: state(std["id"]) == "installed", "staging on the standard DP")
        key = SiteKey.load_or_create(root / "site" / "site-key.pem")
        access = key.access_token(pid, version["source_version"], "bench", ttl_s=24 * 3600)
        url = f"{std_dp.url}/content/{pid}/{version['source_version']}/files/big.bin"
        curl = ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {access}"]
        subprocess.run([*curl, "-o", os.devnull, url], check=True)  # warm the DP's cache

        curl_s, pull_s = [], []
        print(f"file: {opts.mib} MiB, load average {os.getloadavg()[0]:.1f}")
        for n in range(opts.rounds):
            started = time.perf_counter()
            subprocess.run([*curl, "-o", str(root / "curl.out"), url], check=True)
            curl_s.append(time.perf_counter() - started)
            (root / "curl.out").unlink()

            started = time.perf_counter()
            api.post(rows, {"dp_id": branch["id"]})
            wait_for(lambda: state(branch["id"]) == "installed", "the branch DP's pull")
            pull_s.append(time.perf_counter() - started)
            api.delete(f"{rows}/{branch['id']}")
            wait_for(lambda: state(branch["id"]) is None, "the branch DP's removal")
            print(
                f"round {n + 1}: curl {opts.mib / curl_s[-1]:7.1f} MiB/s, branch DP "
                f"{opts.mib / pull_s[-1]:7.1f} MiB/s, ratio {curl_s[-1] / pull_s[-1]:.2f}"
            )
        curl_m, pull_m = statistics.median(curl_s), statistics.median(pull_s)
        print(f"median curl -o file                 : {opts.mib / curl_m:7.1f} MiB/s")
        print(f"median branch DP pull (to installed): {opts.mib / pull_m:7.1f} MiB/s")
        print(f"ratio of medians (branch DP / curl) : {curl_m / pull_m:7.2f}  (target >= 0.80)")
    finally:
        fleet.stop()
        if not os.environ.get("PEERDP_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


if __name__ == "__main__":
    main()

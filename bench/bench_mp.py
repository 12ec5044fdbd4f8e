"""Benchmark (b): POST /mp/v1/content-location against `peerdp site serve`.

Fills a SQLite site database with 10,000 boundaries, 2,000 protected branch DPs,
50 standard DPs, 1,000 packages and 100,000 clients (directly, through the models),
starts a real site server, and drives it with wrk from another process: first the
trivial authenticated endpoint GET /mp/v1/ping, then content-location, in one run,
round after round; the medians count.

    .venv/bin/python bench/bench_mp.py [--rounds 5] [--duration 5] [--connections 16]
                                       [--workers 1]

Needs wrk (Debian package `wrk`). Prints requests/s, p99 latency and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from peerdp.site.auth import token_hash
from peerdp.store.db import Database, upgrade
from peerdp.store.models import (
    Advertisement,
    Boundary,
    Client,
    Collection,
    CollectionMember,
    DistributionPoint,
    Machine,
    Package,
    PackageDistributionPoint,
    PackageVersion,
    Program,
    ProtectedBoundary,
    Site,
)

BOUNDARIES, BRANCHES, STANDARD, PACKAGES, CLIENTS = 10_000, 2_000, 50, 1_000, 100_000


def populate(url: str) -> tuple[str, dict[str, object]]:
    db = Database(url)
    upgrade(db.engine)
    now = datetime.now(UTC)
    credential = "pdm_" + secrets.token_urlsafe(24)
    with db.transaction() as s:
        s.add(Site(code="PS1", name="bench"))
        s.flush()
        for i in range(BOUNDARIES):  # 10.x.y.0/24 subnets
            s.add(
                Boundary(
                    id=i + 1,
                    name=f"b{i}",
                    type="ip_subnet",
                    value=f"10.{i // 250}.{i % 250}.0/24",
                    connection="fast",
                )
            )
        s.flush()
        for i in range(STANDARD):
            s.add(
                DistributionPoint(
                    id=i + 1,
                    name=f"std{i}",
                    kind="standard",
                    bits_enabled=True,
                    url=f"http://127.0.0.1:{9000 + i}",
                    site_code="PS1",
                    ip_addresses=[f"172.16.0.{i + 1}"],
                )
            )
        for i in range(BRANCHES):
            dp = DistributionPoint(
                id=STANDARD + i + 1,
                name=f"br{i}",
                kind="branch",
                bits_enabled=True,
                url=f"http://127.0.0.1:{20000 + i}",
                site_code="PS1",
                ip_addresses=[f"10.{i // 250}.{i % 250}.5"],
            )
            dp.protected_boundaries = [ProtectedBoundary(boundary_id=i + 1)]
            s.add(dp)
        s.flush()
        collection = Collection(id=1, name="all")
        s.add(collection)
        for p in range(PACKAGES):
            s.add(Package(id=f"PS1{p + 1:05X}", name=f"pkg{p}", source_version=1, on_demand=True))
        s.flush()
        for p in range(PACKAGES):
            pid = f"PS1{p + 1:05X}"
            s.add(
                PackageVersion(
                    package_id=pid,
                    source_version=1,
                    manifest={},
                    manifest_digest="0" * 64,
                    file_count=1,
                    total_size=1,
                )
            )
            s.add(Program(package_id=pid, name="install", command_line="true"))
            s.add(
                Advertisement(
                    id=p + 1,
                    name=f"adv{p}",
                    package_id=pid,
                    program_name="install",
                    collection_id=1,
                    protected_only=True,
                    available_at=now,
                )
            )
            for d in range(3):  # three standard DPs and the first branches hold each package
                s.add(
                    PackageDistributionPoint(
                        package_id=pid,
                        dp_id=(p + d) % STANDARD + 1,
                        state="installed",
                        source_version=1,
                        origin="admin",
                        updated_at=now,
                    )
                )
            s.add(
                PackageDistributionPoint(
                    package_id=pid,
                    dp_id=STANDARD + p % BRANCHES + 1,
                    state="installed",
                    source_version=1,
                    origin="admin",
                    updated_at=now,
                )
            )
        s.flush()
        s.bulk_insert_mappings(
            Client,
            [
                {"id": i + 1, "name": f"pc{i}", "ip_addresses": [], "created_at": now}
                for i in range(CLIENTS)
            ],
        )
        s.bulk_insert_mappings(
            CollectionMember,
            [{"collection_id": 1, "machine_name": f"pc{i}"} for i in range(CLIENTS)],
        )
        s.add(
            Machine(
                id="bench-machine",
                role="client",
                name="pc7",
                client_id=8,
                credential_hash=token_hash(credential),
                created_at=now,
            )
        )
        # Every client can call, for the wave: pc<i> holds credential pdm_bench_<i>.
        s.bulk_insert_mappings(
            Machine,
            [
                {
                    "id": f"m{i}",
                    "role": "client",
                    "name": f"pc{i}",
                    "client_id": i + 1,
                    "credential_hash": token_hash(f"pdm_bench_{i}"),
                    "created_at": now,
                }
                for i in range(CLIENTS)
                if i != 7
            ],
        )
    db.dispose()
    # pc7 sits in branch 7's subnet; package 8 is installed on branch DP 7.
    body = {
        "advertisement_id": 8,
        "package_id": "PS100008",
        "source_version": 1,
        "ip_addresses": ["10.0.7.20"],
    }
    return credential, body


def wave_requests(credential: str) -> Path:
    """One content-location request per client, each from its own branch: client i sits
    in branch i mod 1,000 and asks for that branch's package (held by its branch DP)."""
    path = Path(tempfile.mkstemp(suffix=".tsv")[1])
    lines = []
    for i in range(CLIENTS):
        b = i % PACKAGES
        body = {
            "advertisement_id": b + 1,
            "package_id": f"PS1{b + 1:05X}",
            "source_version": 1,
            "ip_addresses": [f"10.{b // 250}.{b % 250}.{20 + i // PACKAGES % 200}"],
        }
        lines.append(f"{credential if i == 7 else f'pdm_bench_{i}'}\t{json.dumps(body)}")
    path.write_text("\n".join(lines) + "\n")
    return path


WAVE_LUA = """
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  requests, i = {}, 0
  local k = 0
  for line in io.lines("%s") do
    if k %% 2 == id then
      local credential, body = line:match("([^\t]+)\t(.*)")
      local headers = {Authorization = "Bearer " .. credential,
                       ["Content-Type"] = "application/json"}
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
    k = k + 1
  end
end
function request()
  i = i %% #requests + 1
  return requests[i]
end
"""


def wrk(
    url: str,
    credential: str,
    duration: int,
    connections: int,
    body: dict[str, object] | None,
    wave: Path | None = None,
) -> tuple[float, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.headers["Authorization"] = "Bearer {credential}"']
    if body is not None:
        lines += [
            'wrk.method = "POST"',
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = [[{json.dumps(body)}]]",
        ]
    script.write_text(WAVE_LUA % wave if wave else "\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  (non-2xx answers: {errors[1]})")
    return rps, float(p99[1]) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--wave", action="store_true", help="each request from another of the 100,000 clients"
    )
    parser.add_argument("--db", default=None, help="PostgreSQL URL (needed for --workers > 1)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="peerdp-bench-"))
    url = args.db or f"sqlite:///{data / 'site.db'}"
    started = time.monotonic()
    credential, body = populate(url)
    print(f"populated in {time.monotonic() - started:.1f}s")
    env = {**os.environ, "PEERDP_ADMIN_TOKEN": "bench"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peerdp",
            "site",
            "serve",
            "--data-dir",
            str(data),
            "--db",
            url,
            "--port",
            "0",
            "--workers",
            str(args.workers),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    assert server.stderr is not None
    line = server.stderr.readline().decode()
    site = re.search(r"(http://\S+)", line)[1]  # type: ignore[index]
    try:
        for _ in range(300):
            try:
                httpx.get(site + "/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        check = httpx.post(
            site + "/mp/v1/content-location",
            json=body,
            headers={"Authorization": f"Bearer {credential}"},
            timeout=60,
        ).json()
        assert [d["name"] for d in check["distribution_points"]] == ["br7"], check
        wrk(site + "/mp/v1/ping", credential, 3, args.connections, None)  # warm up
        if args.wave:
            return run_wave(server.pid, site, credential, args)
        wrk(site + "/mp/v1/content-location", credential, 3, args.connections, body)
        rounds = []
        for n in range(args.rounds):  # alternated, so both see the same machine
            ping = measure(server.pid, site + "/mp/v1/ping", credential, args, None)
            loc = measure(server.pid, site + "/mp/v1/content-location", credential, args, body)
            rounds.append((ping, loc))
            print(
                f"round {n + 1}: ping {ping[0]:.0f} req/s (p99 {ping[1]:.1f} ms, "
                f"{ping[2]:.0f} us CPU), content-location {loc[0]:.0f} req/s "
                f"(p99 {loc[1]:.1f} ms, {loc[2]:.0f} us CPU), ratio {loc[0] / ping[0]:.2f}"
            )
    finally:
        server.terminate()
        server.wait(30)
    ping_m = [statistics.median(r[0][i] for r in rounds) for i in range(3)]
    loc_m = [statistics.median(r[1][i] for r in rounds) for i in range(3)]
    print(f"medians of {args.rounds} rounds of {args.duration} s, {args.connections} connections:")
    print(f"{'endpoint':<30}{'req/s':>8}{'p99 ms':>8}{'CPU us/req':>12}")
    print(f"{'GET /mp/v1/ping':<30}{ping_m[0]:>8.0f}{ping_m[1]:>8.1f}{ping_m[2]:>12.0f}")
    print(f"{'POST /mp/v1/content-location':<30}{loc_m[0]:>8.0f}{loc_m[1]:>8.1f}{loc_m[2]:>12.0f}")
    print(f"ratio content-location / ping: {loc_m[0] / ping_m[0]:.2f}")


def run_wave(pid: int, site: str, credential: str, args: argparse.Namespace) -> None:
    """A deployment wave: every request is a client asking for the first time (cold
    caller and membership caches, a fresh access token), then the trivial endpoint."""
    wave = wave_requests(credential)
    loc = measure_wave(pid, site + "/mp/v1/content-location", credential, args, wave)
    ping = measure(pid, site + "/mp/v1/ping", credential, args, None)
    answered = loc[0] * args.duration
    print(f"wave of {args.duration} s, {args.connections} connections, {answered:.0f} answers")
    if answered > CLIENTS:
        print(f"  (more than {CLIENTS} answers: the last ones were repeat clients)")
    print(f"{'endpoint':<30}{'req/s':>8}{'p99 ms':>8}{'CPU us/req':>12}")
    print(f"{'GET /mp/v1/ping':<30}{ping[0]:>8.0f}{ping[1]:>8.1f}{ping[2]:>12.0f}")
    print(f"{'POST content-location (wave)':<30}{loc[0]:>8.0f}{loc[1]:>8.1f}{loc[2]:>12.0f}")
    print(f"ratio content-location / ping: {loc[0] / ping[0]:.2f}")
    print(f"time to answer {CLIENTS} clients at this rate: {CLIENTS / loc[0]:.0f} s")
    print(f"peak RSS of the site server (every worker): {peak_rss_mib(pid):.0f} MiB")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of the server process and its workers, summed."""
    task = Path(f"/proc/{pid}/task/{pid}")
    status = Path(f"/proc/{pid}/status").read_text()
    own = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]
    children = (task / "children").read_text().split()
    return own + sum(peak_rss_mib(int(child)) for child in children)


def measure_wave(
    pid: int, url: str, credential: str, args: argparse.Namespace, wave: Path
) -> tuple[float, float, float]:
    cpu, started = cpu_seconds(pid), time.monotonic()
    rps, p99 = wrk(url, credential, args.duration, args.connections, None, wave)
    requests = rps * (time.monotonic() - started)
    return rps, p99, (cpu_seconds(pid) - cpu) / requests * 1e6


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the server: the process and its workers (with --workers)."""
    task = Path(f"/proc/{pid}/task/{pid}")
    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = (task / "children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def measure(
    pid: int, url: str, credential: str, args: argparse.Namespace, body: dict[str, object] | None
) -> tuple[float, float, float]:
    """req/s, p99 ms, and the server's CPU microseconds per request (a steadier figure
    than req/s on a shared machine: it does not count time the server waited)."""
    cpu, started = cpu_seconds(pid), time.monotonic()
    rps, p99 = wrk(url, credential, args.duration, args.connections, body)
    requests = rps * (time.monotonic() - started)
    return rps, p99, (cpu_seconds(pid) - cpu) / requests * 1e6


if __name__ == "__main__":
    random.seed(1)
    main()

"""Benchmark (b): POST /mp/v1/content-location against `peerdp site serve`.

Fills a SQLite site database with 10,000 boundaries, 2,000 protected branch DPs,
50 standard DPs, 1,000 packages and 100,000 clients (directly, through the models),
starts a real site server, and drives it with wrk from another process: first the
trivial authenticated endpoint GET /mp/v1/ping, then content-location, in one run,
round after round; the medians count.

    .venv/bin/python bench/bench_mp.py [--rounds 5] [--duration 5] [--connections 16]
                                       [--workers 1] [--tls]

With --tls a second site server on the same data serves HTTPS (a throwaway CA made
here), and each round measures content-location over plain HTTP and over HTTPS, one
after the other (wrk keeps its connections open, so this is TLS's cost per request, not
per handshake).

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
from pathlib import Path

import httpx
from proc_tree import cpu_seconds, peak_rss_mib

from peerdp.store.db import Database, upgrade
from peerdp.store.models import Site

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*
from tests.site.mp_seed import Shape, seed

BOUNDARIES, BRANCHES, STANDARD, PACKAGES, CLIENTS = 10_000, 2_000, 50, 1_000, 100_000
SHAPE = Shape(
    boundaries=BOUNDARIES,
    branches=BRANCHES,
    standard_dps=STANDARD,
    packages=PACKAGES,
    clients=CLIENTS,
)


def populate(url: str) -> tuple[str, dict[str, object]]:
    db = Database(url)
    upgrade(db.engine)
    credential = "pdm_" + secrets.token_urlsafe(24)
    with db.transaction() as s:
        s.add(Site(code="PS1", name="bench"))
        s.flush()
        # Every client can call, for the wave: pc<i> holds credential pdm_bench_<i>.
        seed(s, SHAPE, lambda i: credential if i == 7 else f"pdm_bench_{i}")
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
    parser.add_argument(
        "--tls", action="store_true", help="content-location over HTTPS against plain HTTP"
    )
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="peerdp-bench-"))
    url = args.db or f"sqlite:///{data / 'site.db'}"
    started = time.monotonic()
    credential, body = populate(url)
    print(f"populated in {time.monotonic() - started:.1f}s")
    if args.tls:
        return compare_tls(data, url, credential, body, args)
    server, site = start_site(data, url, args)
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


def start_site(
    data: Path, url: str, args: argparse.Namespace, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`peerdp site serve` on a free port (HTTPS with PEERDP_TLS_* in `extra_env`); its URL."""
    env = {**os.environ, "PEERDP_ADMIN_TOKEN": "bench", **(extra_env or {})}
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
    while "listening on" not in (line := server.stderr.readline().decode()):
        if not line:
            raise RuntimeError("the site server did not start")
    site = re.search(r"(https?://\S+)", line)[1]  # type: ignore[index]
    return server, site


def compare_tls(
    data: Path, url: str, credential: str, body: dict[str, object], args: argparse.Namespace
) -> None:
    """content-location answers/s over plain HTTP and over HTTPS, rounds alternated."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers.tls import TestCA

    ca = TestCA.create(data / "ca")
    cert = ca.server(data / "ca", "site")
    tls_env = {"PEERDP_TLS_CERT": str(cert.cert), "PEERDP_TLS_KEY": str(cert.key)}
    servers = [start_site(data, url, args), start_site(data, url, args, tls_env)]
    try:
        for _server, site in servers:
            for _ in range(300):
                try:
                    httpx.get(site + "/health", timeout=5, verify=str(ca.ca_file))
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            check = httpx.post(
                site + "/mp/v1/content-location",
                json=body,
                headers={"Authorization": f"Bearer {credential}"},
                timeout=60,
                verify=str(ca.ca_file),
            ).json()
            assert [d["name"] for d in check["distribution_points"]] == ["br7"], check
            wrk(site + "/mp/v1/content-location", credential, 3, args.connections, body)
        rounds = []
        for n in range(args.rounds):
            plain, secure = (
                measure(server.pid, site + "/mp/v1/content-location", credential, args, body)
                for server, site in servers
            )
            rounds.append((plain, secure))
            print(
                f"round {n + 1}: content-location over HTTP {plain[0]:.0f} req/s "
                f"(p99 {plain[1]:.1f} ms, {plain[2]:.0f} us CPU), over HTTPS {secure[0]:.0f} "
                f"req/s (p99 {secure[1]:.1f} ms, {secure[2]:.0f} us CPU), "
                f"ratio {secure[0] / plain[0]:.2f}"
            )
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(30)
    plain_m = [statistics.median(r[0][i] for r in rounds) for i in range(3)]
    tls_m = [statistics.median(r[1][i] for r in rounds) for i in range(3)]
    print(f"medians of {args.rounds} rounds of {args.duration} s, {args.connections} connections:")
    print(f"{'POST /mp/v1/content-location':<30}{'req/s':>8}{'p99 ms':>8}{'CPU us/req':>12}")
    print(f"{'over HTTP':<30}{plain_m[0]:>8.0f}{plain_m[1]:>8.1f}{plain_m[2]:>12.0f}")
    print(f"{'over HTTPS':<30}{tls_m[0]:>8.0f}{tls_m[1]:>8.1f}{tls_m[2]:>12.0f}")
    print(f"ratio HTTPS / HTTP: {tls_m[0] / plain_m[0]:.2f}")


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


def measure_wave(
    pid: int, url: str, credential: str, args: argparse.Namespace, wave: Path
) -> tuple[float, float, float]:
    cpu, started = cpu_seconds(pid), time.monotonic()
    rps, p99 = wrk(url, credential, args.duration, args.connections, None, wave)
    requests = rps * (time.monotonic() - started)
    return rps, p99, (cpu_seconds(pid) - cpu) / requests * 1e6


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

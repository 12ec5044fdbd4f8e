"""Benchmark: K policy long-polls held by `peerdp site serve`, and what a change costs.

Fills a site with the MP benchmark's 100,000 clients and realistic policies (about ten
advertisements each, see `policy_world`), starts a real site server, and for each K
holds K long-polls `GET /mp/v1/policy?since=<version>&wait=<--wait>` from K distinct
clients (pc0..pc<K-1>), spread over client processes (`poll_clients`, at most 8,000
sockets each, each from its own loopback address). It measures:

- establishing: the server's CPU per client to learn its version (a plain GET) and to
  start its held poll, and the server's memory (RSS of every process) per held poll;
- three changes through the admin API: a boundary added (concerns no client), an
  advertisement for collection `hundred` (pc0..pc99: 100 of the waiters), an
  advertisement for collection `all` (every waiter). For each, the server's CPU over the
  burst (until the concerned waiters have their new policy and the server's CPU is flat
  for 2 s), when each concerned waiter got its new policy (p50/p99/max after the change
  was sent), how many other waiters were answered, and the latency of content-location
  requests a prober process sends meanwhile (sequential, --probe-rate per second). An
  answered waiter polls again at once with its new version, so K stay held;
- quiet timeouts: --quiet-rate clients (pc50000..) poll with wait=1 while the K are
  held, so that many requests a second end with nothing changed (as 100,000 clients
  polling with wait=290 would: 100,000 / 290 = 345/s); the server's CPU, % of one core.

A 304 answer (to `If-None-Match: "<since>"`, which every poll sends) counts as unchanged.

    .venv/bin/python bench/bench_policy.py [--waiters 1000,10000,19000] [--wait 290]
        [--db sqlite|postgresql] [--pg-url URL] [--workers 1] [--reuse] [--cache FILE]
        [--quiet-rate 345] [--probe-rate 20] [--json FILE]

SQLite: the populated database is kept in --cache and, with --reuse, taken from there
(population takes minutes); every K starts a fresh server on a fresh copy. PostgreSQL
(PEERDP_TEST_PG-style URL): a fresh schema, populated once per run and dropped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from bench_mp import start_site
from policy_world import (
    ALL_ID,
    HUNDRED,
    HUNDRED_ID,
    credential,
    drop_pg_schema,
    location_probe,
    new_pg_schema,
    pg_schema_url,
    populate,
)
from poll_clients import PollFleet
from proc_tree import cpu_seconds, rss_kib

ADMIN_TOKEN = "bench"  # bench_mp.start_site passes it as PEERDP_ADMIN_TOKEN
SOCKETS_PER_PROCESS = 8_000
QUIET_FIRST = 50_000  # the quiet clients are pc50000.., never among the waiters
QUIET_PERIOD_S = 2  # each quiet client polls (wait=1) once in this many seconds
PROBE_CLIENT = 99_999
DEFAULT_PG = os.environ.get("PEERDP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "peerdp-bench-policy" / "site.db"


# -- the server's process tree ---------------------------------------------------------


def cpu_rate(pid: int, seconds: float = 2.0) -> float:
    """The server's CPU seconds per second over the next `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def wait_until_idle(pid: int, idle_rate: float, limit_s: float = 600) -> None:
    """Until the server's CPU over 2 s is within 0.05 core of `idle_rate`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and cpu_rate(pid) > idle_rate + 0.05:
        pass


def waiting_gauge(site: str) -> float:
    """How many long-polls the server says wait (0 while it is too busy to tell)."""
    try:
        text = httpx.get(site + "/metrics", timeout=120).text
    except httpx.HTTPError:
        return 0.0
    found = re.search(r"^peerdp_mp_policy_waiting (\S+)", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


@dataclass
class Server:
    process: Any
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)


def start_server(data: Path, db_url: str, workers: int, wait_max: float | None) -> Server:
    env = {} if wait_max is None else {"PEERDP_POLICY_WAIT_MAX_S": str(wait_max)}
    process, url = start_site(data, db_url, argparse.Namespace(workers=workers), env)
    log, stderr = data / "site.log", process.stderr
    assert stderr is not None

    def drain() -> None:  # the server logs every request: its stderr must not fill up
        with log.open("wb") as out:
            shutil.copyfileobj(stderr, out)

    threading.Thread(target=drain, daemon=True).start()
    for _ in range(600):
        try:
            httpx.get(url + "/health", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return Server(process, url, log)


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL after 60 s: a server on today's code answers every held poll
    as it stops, which takes long with thousands."""
    server.process.terminate()
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


# -- the prober ------------------------------------------------------------------------


def probe(url: str, rate: float, out: str) -> None:
    """Sequential content-location requests, `rate` a second at most, each written down as
    "<start, monotonic> <latency s> <status>"."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    request = location_probe(PROBE_CLIENT)
    body = json.dumps(request.body)
    headers = {
        "Authorization": f"Bearer {credential(request.client)}",
        "Content-Type": "application/json",
    }
    with open(out, "a", buffering=1) as lines:
        while True:
            started = time.monotonic()
            try:
                conn.request("POST", "/mp/v1/content-location", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                status = -1
            lines.write(f"{started} {time.monotonic() - started} {status}\n")
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


def wait_for_first_probe(path: Path, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not (path.exists() and path.read_text()):
        if time.monotonic() > deadline:
            raise RuntimeError("the content-location prober did not start")
        time.sleep(0.1)


def probe_latencies(path: Path, start: float, end: float) -> tuple[list[float], int]:
    """Latencies (s) of the probes under way at some time in [start, end] (one that began
    before and ended inside counts: it was held up by the burst), and how many failed."""
    latencies, failed = [], 0
    for line in path.read_text().splitlines():
        started, latency, status = line.split()
        if float(started) <= end and float(started) + float(latency) >= start:
            latencies.append(float(latency))
            failed += status != "200"
    return latencies, failed


# -- figures ---------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1], "n": len(ordered)}


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


# -- one K -----------------------------------------------------------------------------


@dataclass
class Run:
    server: Server
    fleet: PollFleet
    waiters: list[int]
    probe_file: Path
    max_burst_s: float
    learn_concurrency: int


def establish(run: Run, wait: float) -> dict[str, Any]:
    pid, k = run.server.pid, len(run.waiters)
    idle = cpu_rate(pid)
    cpu, started = cpu_seconds(pid), time.monotonic()
    learned = run.fleet.ask("learn", run.learn_concurrency)
    learn_cpu, learn_s = cpu_seconds(pid) - cpu, time.monotonic() - started
    print(f"  learned {sum(n for n, _ in learned)} versions in {learn_s:.1f} s", flush=True)
    wait_until_idle(pid, idle)
    rss, cpu, started = rss_kib(pid), cpu_seconds(pid), time.monotonic()
    sent = run.fleet.ask("hold", wait)
    while (held := waiting_gauge(run.server.url)) < k and time.monotonic() - started < 900:
        time.sleep(1)
    held_s = time.monotonic() - started
    wait_until_idle(pid, idle)
    hold_cpu, rss_after = cpu_seconds(pid) - cpu, rss_kib(pid)
    errors = max(e for _, e in sent)
    print(f"  {held:.0f} polls held after {held_s:.1f} s ({errors} errors)", flush=True)
    return {
        "waiters": k,
        "learn_s": learn_s,
        "learn_cpu_ms_per_client": learn_cpu / k * 1000,
        "establish_s": held_s,
        "held": held,
        "establish_cpu_ms_per_client": hold_cpu / k * 1000,
        "rss_before_mib": rss / 1024,
        "rss_after_mib": rss_after / 1024,
        "rss_kib_per_poll": (rss_after - rss) / k,
        "client_errors": errors,
    }


def change(run: Run, make: Callable[[], object], concerned: set[int]) -> dict[str, Any]:
    """One change: the burst it causes and who was answered."""
    pid = run.server.pid
    run.fleet.ask("mark", sorted(concerned))
    idle = cpu_rate(pid)
    sent, cpu = time.monotonic(), cpu_seconds(pid)
    make()
    samples = [(time.monotonic(), cpu_seconds(pid))]
    admin_s = samples[0][0] - sent
    while True:
        time.sleep(0.25)
        now, used = time.monotonic(), cpu_seconds(pid)
        samples.append((now, used))
        answered = sum(a for a, _ in run.fleet.ask("progress"))
        if len(samples) % 40 == 0:  # every 10 s: a long burst shows it is alive
            print(f"    {now - sent:.0f} s: {answered}/{len(concerned)} answered", flush=True)
        recent = [c for t, c in samples if t >= now - 2.0]
        flat = now - sent >= 2.0 and (used - recent[0]) <= (idle + 0.05) * 2.0
        if (answered >= len(concerned) and flat) or now - sent > run.max_burst_s:
            break
    burst_s, burst_cpu = now - sent, used - cpu
    return {
        "burst_s": burst_s,
        "admin_request_s": admin_s,
        "burst_cpu_s": burst_cpu,
        "idle_cpu_rate": idle,
        "cpu_by_second": timeline(samples, sent),
        "burst_cpu_over_idle_s": burst_cpu - idle * burst_s,
        **answers(run, sent, concerned),
        **probes(run, sent, now),
    }


def timeline(samples: list[tuple[float, float]], sent: float) -> list[float]:
    """The server's CPU seconds in each second after the change was sent."""
    per_second: dict[int, float] = {}
    for (_, c0), (t1, c1) in itertools.pairwise(samples):
        per_second[int(t1 - sent)] = per_second.get(int(t1 - sent), 0.0) + c1 - c0
    return [round(per_second.get(s, 0.0), 2) for s in range(max(per_second, default=-1) + 1)]


def answers(run: Run, sent: float, concerned: set[int]) -> dict[str, Any]:
    events, before = [], {}
    for found, versions, _errors in run.fleet.ask("events"):
        events += found
        before.update(versions)
    delays: dict[int, float] = {}
    others = others_changed = broken = 0
    for client, at, status, version in events:
        if status == -1:
            broken += 1
        elif client in concerned:
            if version > before.get(client, 0) and client not in delays:
                delays[client] = at - sent
        else:
            others += 1
            others_changed += version > before.get(client, 0)
    return {
        "concerned": len(concerned),
        "concerned_answered": len(delays),
        "new_policy_latency_s": percentiles(list(delays.values())),
        "others_answered": others,
        "others_answered_with_new_version": others_changed,
        "broken_connections": broken,
    }


def probes(run: Run, start: float, end: float) -> dict[str, Any]:
    latencies, failed = probe_latencies(run.probe_file, start, end)
    return {"content_location_latency_s": percentiles(latencies), "content_location_failed": failed}


def quiet(run: Run, rate: int, window_s: float = 10.0) -> dict[str, Any]:
    """About `rate` quiet timeouts a second: 2 x `rate` clients, each polling with wait=1
    once every 2 s (fewer if the server takes over a second more to answer)."""
    host, port = urlsplit(run.server.url).hostname, urlsplit(run.server.url).port
    clients = list(range(QUIET_FIRST, QUIET_FIRST + QUIET_PERIOD_S * rate))
    fleet = PollFleet(host or "127.0.0.1", port or 80, [clients], 2 + len(run.fleet.pipes))
    try:
        fleet.ask("learn", run.learn_concurrency)
        idle = cpu_rate(run.server.pid)
        fleet.ask("hold", 1.0, QUIET_PERIOD_S)
        time.sleep(3)
        fleet.ask("mark", [])
        cpu, started = cpu_seconds(run.server.pid), time.monotonic()
        time.sleep(window_s)
        used, took = cpu_seconds(run.server.pid) - cpu, time.monotonic() - started
        [(events, _, errors)] = fleet.ask("events")
    finally:
        fleet.close()
    done = [e for e in events if e[2] in (200, 304)]
    return {
        "clients": len(clients),
        "timeouts_per_s": len(done) / took,
        "status_304": sum(1 for e in done if e[2] == 304),
        "cpu_percent_of_one_core": used / took * 100,
        "idle_cpu_percent_before": idle * 100,
        "errors": errors,
    }


def one_k(args: argparse.Namespace, db_url: str, k: int, work: Path) -> dict[str, Any]:
    data = work / f"k{k}"
    data.mkdir()
    if args.db == "sqlite":
        shutil.copyfile(args.cache, data / "site.db")
        db_url = f"sqlite:///{data / 'site.db'}"
    server = start_server(data, db_url, args.workers, args.wait_max)
    waiters = list(range(k))
    groups = [waiters[i : i + SOCKETS_PER_PROCESS] for i in range(0, k, SOCKETS_PER_PROCESS)]
    parts = urlsplit(server.url)
    fleet = None
    prober = None
    try:
        fleet = PollFleet(parts.hostname or "127.0.0.1", parts.port or 80, groups, 2)
        run = Run(
            server, fleet, waiters, data / "probes.txt", args.max_burst, args.learn_concurrency
        )
        result = establish(run, args.wait)
        prober = multiprocessing.get_context("spawn").Process(
            target=probe, args=(server.url, args.probe_rate, str(run.probe_file)), daemon=True
        )
        prober.start()
        wait_for_first_probe(run.probe_file)
        admin = httpx.Client(
            base_url=server.url + "/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=600,
        )
        changes = {
            "boundary (concerns none)": (lambda: add_boundary(admin, k), set()),
            "advertisement to 100": (lambda: advertise(admin, HUNDRED_ID, k, 1), set(HUNDRED)),
            "advertisement to all": (lambda: advertise(admin, ALL_ID, k, 2), set(waiters)),
        }
        result["changes"] = {}
        for name, (make, concerned) in changes.items():
            figures = change(run, make, concerned)
            result["changes"][name] = figures
            print(f"  {name}: {json.dumps(figures)}", flush=True)
        if args.quiet_rate:
            result["quiet"] = quiet(run, args.quiet_rate)
            print(f"  quiet: {json.dumps(result['quiet'])}", flush=True)
    finally:
        try:
            if prober is not None:
                prober.terminate()
                prober.join(10)
            if fleet is not None:
                fleet.close()
        finally:
            stop_server(server)
    if args.restart:
        result["restart"] = restart(args, data, db_url, groups)
        print(f"  restart: {json.dumps(result['restart'])}", flush=True)
    return result


def restart(
    args: argparse.Namespace, data: Path, db_url: str, groups: list[list[int]]
) -> dict[str, Any]:
    """The site restarted on the same database, then each of the K clients asks for its
    policy once (a plain GET, as an agent does after a restart): the server's CPU from its
    start until it is idle (importing, migrations, reading every machine's policy), and
    per client asking."""
    server = start_server(data, db_url, args.workers, args.wait_max)
    fleet = None
    try:
        started = time.monotonic()
        wait_until_idle(server.pid, 0.0)
        start_cpu, start_s = cpu_seconds(server.pid), time.monotonic() - started
        idle = cpu_rate(server.pid)
        parts = urlsplit(server.url)
        fleet = PollFleet(parts.hostname or "127.0.0.1", parts.port or 80, groups, 2)
        cpu, started = cpu_seconds(server.pid), time.monotonic()
        asked = fleet.ask("learn", args.learn_concurrency)
        ask_s = time.monotonic() - started
        ask_cpu = cpu_seconds(server.pid) - cpu - idle * ask_s
        k = sum(len(group) for group in groups)
        return {
            "start_cpu_s": start_cpu,
            "start_to_idle_s": start_s,
            "asked": sum(n for n, _ in asked),
            "ask_s": ask_s,
            "ask_cpu_ms_per_client_over_idle": ask_cpu / k * 1000,
        }
    finally:
        if fleet is not None:
            fleet.close()
        stop_server(server)


def add_boundary(admin: httpx.Client, k: int) -> None:
    body = {"name": f"bench-{k}", "type": "ip_subnet", "value": f"192.168.{k % 250}.0/24"}
    admin.post("/boundaries", json=body).raise_for_status()


def advertise(admin: httpx.Client, collection_id: int, k: int, n: int) -> None:
    # Packages PS1002BD.. (p >= 700) are advertised only to `lab`: a new one for each change.
    p = 700 + n
    body = {
        "name": f"bench-{k}-{n}",
        "package_id": f"PS1{p + 1:05X}",
        "program_name": "install",
        "collection_id": collection_id,
    }
    admin.post("/advertisements", json=body).raise_for_status()


# -- the run ---------------------------------------------------------------------------


def print_table(results: list[dict[str, Any]]) -> None:
    print("\nestablishing K held polls")
    print(
        f"{'K':>6} {'held':>6} {'learn ms CPU/client':>20} {'hold ms CPU/client':>19}"
        f" {'hold wall s':>12} {'RSS MiB before':>15} {'after':>7} {'KiB/poll':>9}"
    )
    for r in results:
        print(
            f"{r['waiters']:>6} {r['held']:>6.0f} {r['learn_cpu_ms_per_client']:>20.2f}"
            f" {r['establish_cpu_ms_per_client']:>19.2f} {r['establish_s']:>12.1f}"
            f" {r['rss_before_mib']:>15.0f} {r['rss_after_mib']:>7.0f}"
            f" {r['rss_kib_per_poll']:>9.1f}"
        )
    print("\nchanges (latencies in ms after the admin request was sent; others: waiters not")
    print("concerned that were answered, in brackets those answered with a new version)")
    print(
        f"{'K':>6} {'change':<26} {'CPU s':>7} {'burst s':>8} {'answered':>11}"
        f" {'new policy p50/p99/max':>24} {'others':>12} {'content-location p50/p99/max':>30}"
    )
    for r in results:
        for name, c in r["changes"].items():
            lat, loc = c["new_policy_latency_s"], c["content_location_latency_s"]
            others = f"{c['others_answered']} ({c['others_answered_with_new_version']})"
            print(
                f"{r['waiters']:>6} {name:<26} {c['burst_cpu_s']:>7.1f} {c['burst_s']:>8.1f}"
                f" {c['concerned_answered']:>5}/{c['concerned']:<5}"
                f" {ms(lat['p50']) + '/' + ms(lat['p99']) + '/' + ms(lat['max']):>24}"
                f" {others:>12}"
                f" {ms(loc['p50']) + '/' + ms(loc['p99']) + '/' + ms(loc['max']):>30}"
            )
    restarts = [r for r in results if "restart" in r]
    if restarts:
        print("\nrestart: the site started again on the same database, then the K clients ask once")
        print(f"{'K':>6} {'start CPU s':>12} {'asked':>6} {'ask s':>6} {'ask ms CPU/client':>18}")
        for r in restarts:
            x = r["restart"]
            print(
                f"{r['waiters']:>6} {x['start_cpu_s']:>12.1f} {x['asked']:>6} {x['ask_s']:>6.1f}"
                f" {x['ask_cpu_ms_per_client_over_idle']:>18.2f}"
            )
    quiet_rows = [r for r in results if "quiet" in r]
    if quiet_rows:
        print("\nquiet timeouts (wait=1) while K are held")
        print(f"{'K':>6} {'timeouts/s':>11} {'304s':>6} {'server CPU % of a core':>23}")
        for r in quiet_rows:
            q = r["quiet"]
            print(
                f"{r['waiters']:>6} {q['timeouts_per_s']:>11.0f} {q['status_304']:>6}"
                f" {q['cpu_percent_of_one_core']:>23.0f}"
            )


def prepare(args: argparse.Namespace) -> tuple[str, str | None]:
    """The populated database's URL (for SQLite, the cache file) and the PG schema made."""
    if args.db == "postgresql":
        schema = new_pg_schema(args.pg_url)
        url = pg_schema_url(args.pg_url, schema)
        timed_populate(url)
        return url, schema
    if not (args.reuse and args.cache.exists()):
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        fresh = args.cache.with_suffix(".new")
        fresh.unlink(missing_ok=True)
        timed_populate(f"sqlite:///{fresh}")
        fresh.replace(args.cache)
    return f"sqlite:///{args.cache}", None


def timed_populate(url: str) -> None:
    started = time.monotonic()
    populate(url)
    print(f"populated in {time.monotonic() - started:.0f} s", flush=True)


def stop_on_sigterm(signum: int, frame: object) -> None:
    # The finally blocks stop the server and the clients; a second signal must not cut
    # them short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", default="1000,10000,19000", help="K values, comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="with --db postgresql")
    parser.add_argument("--workers", type=int, default=1, help="site serve --workers")
    parser.add_argument("--wait", type=float, default=290, help="seconds each poll asks to wait")
    parser.add_argument(
        "--wait-max",
        type=float,
        help="the server's policy_wait_max_s (default its own, 300 s): with a --wait past "
        "the time a run takes, no held poll times out during it",
    )
    parser.add_argument("--reuse", action="store_true", help="use the populated --cache file")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--quiet-rate", type=int, default=345, help="0: no quiet phase")
    parser.add_argument("--probe-rate", type=float, default=20)
    parser.add_argument("--max-burst", type=float, default=900, help="seconds per change, at most")
    parser.add_argument(
        "--learn-concurrency",
        type=int,
        default=2,
        help="plain GETs in flight per client process while learning the versions",
    )
    parser.add_argument(
        "--restart",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="then restart the site and have the K clients ask once",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    db_url, schema = prepare(args)
    results = []
    work = Path(tempfile.mkdtemp(prefix="peerdp-bench-policy-"))
    try:
        for k in (int(v) for v in args.waiters.split(",")):
            print(f"K = {k}", flush=True)
            results.append(one_k(args, db_url, k, work))
            if args.json:  # after each K: a later one may fail or be stopped
                write_json(args, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if schema is not None:
            drop_pg_schema(args.pg_url, schema)
    print_table(results)


def write_json(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    meta = {"cores": os.cpu_count(), "workers": args.workers, "db": args.db, "wait": args.wait}
    args.json.write_text(json.dumps({"run": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The console at 100,000 clients and 2,000 DPs: its pages' time to first byte, and what
open consoles cost the MP's content-location answers.

Fills a site database as bench_status.py does (bench_mp's population, advertisement 1's
100,000 deployment states, package PS100001 on all 2,050 DPs), and adds what the
dashboard's newer parts read: today's bytes for every DP, 200,000 status messages over
the last 48 hours (one in 20 an error), and 50 branch DPs pulling PS100001. Then, against
a real `peerdp site serve` (one worker):

(a) time to first byte of the dashboard and of advertisement 1's page: 100 loads each
    (after 5 unmeasured), alternated, over one kept-alive connection, signed in; the
    dashboard's loads spaced so that each reads the site afresh (open dashboards share
    one read for a second);
(b) content-location answers per second (wrk, as bench_mp.py) with no console open, with
    20 consoles holding `/console/events` open, and with those 20 consoles also fetching
    the dashboard's live part on every change event, as the browser's script does; in
    rounds alternating the three (every other round in the reverse order), medians
    reported, with the server's CPU time per answer (steadier on a shared machine).
    The answers themselves move advertisement 8's deployment states (written in
    batches), so the consoles receive change events throughout.

    .venv/bin/python bench/bench_console.py [--loads 100] [--rounds 3] [--duration 5]
                                            [--connections 16] [--consoles 20] [--db URL]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from bench_mp import SHAPE, measure, populate, start_site, wrk
from bench_status import ADVERTISEMENT, PACKAGE, add_status, settle
from policy_world import drop_pg_schema, new_pg_schema, pg_schema_url
from sqlalchemy import update

from peerdp.site.console.dashboard import SHARED_S
from peerdp.store.db import Database
from peerdp.store.models import DPTrafficDay, PackageDistributionPoint, StatusMessage

PAGES = {"dashboard": "/console/", "advertisement page": f"/console/advertisements/{ADVERTISEMENT}"}
MESSAGES, ERROR_EVERY, PULLS = 200_000, 20, 50


def add_dashboard_data(url: str) -> None:
    """Today's bytes of every DP, the status log, and branch DPs pulling."""
    db = Database(url)
    now = datetime.now(UTC)
    dps = SHAPE.standard_dps + SHAPE.branches
    rng = random.Random(2)
    with db.transaction() as s:
        s.bulk_insert_mappings(
            DPTrafficDay,
            [
                {
                    "dp_id": dp_id,
                    "day": day,
                    "pulled_bytes": 0 if dp_id <= SHAPE.standard_dps else rng.randrange(1 << 30),
                    "served_bytes": rng.randrange(1 << 32),
                }
                for dp_id in range(1, dps + 1)
                for day in (now.date(), (now - timedelta(days=1)).date())
            ],
        )
        for start in range(0, MESSAGES, 20_000):
            s.bulk_insert_mappings(
                StatusMessage,
                [
                    {
                        "at": now - timedelta(seconds=i * 48 * 3600 / MESSAGES),
                        "received_at": now,
                        "component": "client",
                        "source": f"pc{i % SHAPE.clients}",
                        "type": "program_failed" if i % ERROR_EVERY == 0 else "program_started",
                        "severity": "error" if i % ERROR_EVERY == 0 else "info",
                        "package_id": PACKAGE,
                        "source_version": 1,
                        "client_name": f"pc{i % SHAPE.clients}",
                        "advertisement_id": ADVERTISEMENT,
                        "detail": "exit code 1" if i % ERROR_EVERY == 0 else "",
                    }
                    for i in range(start, min(start + 20_000, MESSAGES))
                ],
            )
        table = PackageDistributionPoint
        pulling = range(SHAPE.standard_dps + 1, SHAPE.standard_dps + 1 + PULLS)
        s.execute(
            update(table)
            .where(table.package_id == PACKAGE, table.dp_id.in_(list(pulling)))
            .values(
                state="install_pending",
                pull_done_bytes=300_000_000,
                pull_total_bytes=1_000_000_000,
                pull_bytes_per_s=2_000_000,
                pull_at=now + timedelta(hours=1),  # shown throughout the run
            )
        )
    db.dispose()


def ttfb_ms(http: httpx.Client, path: str) -> float:
    """Milliseconds from sending the request to the first byte of the body."""
    started = time.perf_counter()
    elapsed = None
    with http.stream("GET", path) as answer:
        assert answer.status_code == 200, answer.status_code
        for _ in answer.iter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - started) * 1000
    assert elapsed is not None, "an empty page"
    return elapsed


def sign_in(http: httpx.Client, site: str) -> None:
    answer = http.post("/console/sign-in", data={"credential": "bench"}, headers={"Origin": site})
    assert answer.status_code == 303, answer.text


class Consoles:
    """`n` signed-in consoles holding `/console/events` open, each on its own thread; with
    `refresh`, each fetches the dashboard's live part on every change event."""

    def __init__(self, site: str, n: int, *, refresh: bool) -> None:
        self.site, self.refresh = site, refresh
        self.stop = threading.Event()
        self.events = 0
        self.refreshes = 0
        self._lock = threading.Lock()
        self._open = threading.Barrier(n + 1)
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for thread in self.threads:
            thread.start()
        self._open.wait(60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.site, timeout=httpx.Timeout(60, read=30)) as http:
            sign_in(http, self.site)
            with http.stream("GET", "/console/events") as stream:
                self._open.wait(60)
                for line in stream.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("event: change"):
                        with self._lock:
                            self.events += 1
                        if self.refresh:
                            assert http.get("/console/live").status_code == 200
                            with self._lock:
                                self.refreshes += 1

    def close(self) -> None:
        self.stop.set()  # each stream ends at its next line (an event or a keepalive)
        for thread in self.threads:
            thread.join(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--db", default=None, help="PostgreSQL URL (a fresh schema is made)")
    args = parser.parse_args()
    args.workers = 1
    data = Path(tempfile.mkdtemp(prefix="peerdp-bench-console-"))
    schema = new_pg_schema(args.db) if args.db else None
    url = pg_schema_url(args.db, schema) if args.db and schema else f"sqlite:///{data / 'site.db'}"
    try:
        started = time.monotonic()
        credential, body = populate(url)
        add_status(url)
        add_dashboard_data(url)
        settle(url)
        print(f"populated in {time.monotonic() - started:.1f}s ({url.split('?')[0]})")
        server, site = start_site(data, url, args)
        try:
            print(f"load: {uptime()}")
            time_pages(site, args)
            print(f"load: {uptime()}")
            compare_consoles(server.pid, site, credential, body, args)
            print(f"load: {uptime()}")
        finally:
            server.terminate()
            server.wait(30)
    finally:
        if args.db and schema:
            drop_pg_schema(args.db, schema)
        shutil.rmtree(data, ignore_errors=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def time_pages(site: str, args: argparse.Namespace) -> None:
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    with httpx.Client(base_url=site, timeout=60) as http:
        sign_in(http, site)
        board = http.get("/console/").text
        assert "Pulls in progress" in board and board.count("data-pull-of=") == PULLS
        assert board.count("data-error=") == 20 and board.count("data-traffic-of=") == 10
        for _ in range(5):
            for path in PAGES.values():
                ttfb_ms(http, path)
        last = 0.0
        for _ in range(args.loads):
            # Each dashboard load a fresh read: open consoles share one for SHARED_S.
            time.sleep(max(0.0, last + SHARED_S + 0.05 - time.monotonic()))
            last = time.monotonic()
            for name, path in PAGES.items():
                times[name].append(ttfb_ms(http, path))
    print(f"(a) time to first byte, {args.loads} loads each, one connection, ms:")
    print(f"{'page':<24}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, samples in times.items():
        p99 = statistics.quantiles(samples, n=100)[98]
        print(f"{name:<24}{statistics.median(samples):>8.1f}{p99:>8.1f}{max(samples):>8.1f}")


def compare_consoles(
    pid: int, site: str, credential: str, body: dict[str, object], args: argparse.Namespace
) -> None:
    location = site + "/mp/v1/content-location"
    wrk(location, credential, 3, args.connections, body)  # warm-up
    kinds = ("no console", f"{args.consoles} consoles holding events", "… and refreshing")
    results: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in kinds}
    for n in range(args.rounds):
        # Every other round in the reverse order: a machine growing busier or quieter
        # during the run does not favour one kind.
        for kind in kinds if n % 2 == 0 else kinds[::-1]:
            consoles = None
            if kind != kinds[0]:
                consoles = Consoles(site, args.consoles, refresh=kind == kinds[2])
            try:
                results[kind].append(measure(pid, location, credential, args, body))
            finally:
                if consoles is not None:
                    consoles.close()
                    print(
                        f"  round {n + 1}, {kind}: {consoles.events} change events received, "
                        f"{consoles.refreshes} live parts fetched"
                    )
            rps = results[kind][-1][0]
            print(f"round {n + 1}: {kind}: {rps:.0f} answers/s")
    base = statistics.median(r[0] for r in results[kinds[0]])
    print(f"(b) medians of {args.rounds} rounds of {args.duration} s, {args.connections} conns:")
    print(f"{'content-location':<40}{'req/s':>8}{'p99 ms':>8}{'CPU us/req':>12}{'ratio':>7}")
    for kind, rounds in results.items():
        m = [statistics.median(r[i] for r in rounds) for i in range(3)]
        print(f"{kind:<40}{m[0]:>8.0f}{m[1]:>8.1f}{m[2]:>12.0f}{m[0] / base:>7.2f}")


if __name__ == "__main__":
    main()

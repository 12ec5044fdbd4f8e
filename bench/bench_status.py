"""The status summaries at 100,000 clients and 2,000 DPs against a trivial endpoint.

Fills a site database with the MP benchmark's population (bench_mp.populate: 10,000
boundaries, 2,000 protected branch DPs, 50 standard DPs, 1,000 packages, 100,000
clients), then:

- advertisement 1 gets a deployment state on every one of the 100,000 clients, spread
  over the seven states (of every 21: 14 succeeded, 2 failed, one in each other state)
  and over the 2,000 branch boundaries (each client in its branch's), with its branch DP
  as source;
- package PS100001 goes on every DP (2,050 rows of its DP list, most installed, some
  pending on demand, some failed) with bytes pulled and served, and 500 on-demand
  requests.

It starts a real `peerdp site serve` and, from this process over one kept-alive
connection, times 100 calls of each endpoint below (after 5 unmeasured ones), in rounds
that alternate them so that all see the same machine:

    .venv/bin/python bench/bench_status.py [--calls 100] [--db postgresql://...]

Prints p50 and p99 in milliseconds; the target is p99 <= 200 ms for the summaries. The
console's dashboard, advertisement and package pages, its inventory lists, and its clients
pages and a client's page are timed too, signed in with the site's admin token (whole
pages, as a browser loads them).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from bench_mp import SHAPE, populate, start_site
from policy_world import drop_pg_schema, new_pg_schema, pg_schema_url
from sqlalchemy import select

from peerdp.domain.deployment_states import DEPLOYMENT_STATES
from peerdp.store.db import Database
from peerdp.store.models import DeploymentStateRow, OnDemandRequest, PackageDistributionPoint

ADVERTISEMENT = 1
PACKAGE = "PS100001"
# Of every 21 clients: 14 succeeded, 2 failed, one in each of the other five states.
STATE_OF = (
    ["succeeded"] * 14
    + ["failed"] * 2
    + [s for s in DEPLOYMENT_STATES if s not in ("succeeded", "failed")]
)
ENDPOINTS = {
    "GET /health (trivial)": ("/health", None),
    "GET /api/v1/advertisements/1 (trivial admin)": ("/api/v1/advertisements/1", None),
    "advertisement status": (f"/api/v1/advertisements/{ADVERTISEMENT}/status", None),
    "advertisement status, failed, offset 5000": (
        f"/api/v1/advertisements/{ADVERTISEMENT}/status",
        {"state": "failed", "offset": 5000},
    ),
    "advertisement status, client pc4242": (
        f"/api/v1/advertisements/{ADVERTISEMENT}/status",
        {"client": "pc4242"},
    ),
    "package status (2,050 DPs)": (f"/api/v1/packages/{PACKAGE}/status", None),
    # The console's pages (signed in first): each a whole server-rendered page.
    "console: dashboard": ("/console/", None),
    "console: advertisement page": (f"/console/advertisements/{ADVERTISEMENT}", None),
    "console: package page": (f"/console/packages/{PACKAGE}", None),
    # The inventory pages: each list a page of 100 rows, filtered and counted in SQL.
    "console: packages list (1,000)": ("/console/packages", None),
    "console: DPs list (2,050), branch, page 10": (
        "/console/distribution-points",
        {"kind": "branch", "number": 10},
    ),
    "console: a DP's page": ("/console/distribution-points/60", None),
    "console: boundaries (10,000), page 50": ("/console/boundaries", {"number": 50}),
    "console: boundaries, value prefix": ("/console/boundaries", {"q": "10.3.1"}),
    "console: collection of 100,000, page 500": ("/console/collections/1", {"number": 500}),
    "console: collection of 100,000, name prefix": ("/console/collections/1", {"q": "pc4242"}),
    "console: clients, page 1": ("/console/clients", None),
    "console: clients, page 2,000 (the last)": ("/console/clients", {"number": 2000}),
    "console: clients named pc4242...": ("/console/clients", {"name": "PC4242"}),
    "console: client pc4242's page": ("/console/clients/4243", None),
}


def add_status(url: str) -> None:
    """The deployment states of advertisement 1 and the DP list of PS100001."""
    db = Database(url)
    now = datetime.now(UTC)
    branches, standard = SHAPE.branches, SHAPE.standard_dps
    with db.transaction() as s:
        rows = []
        for i in range(SHAPE.clients):
            state = STATE_OF[i % len(STATE_OF)]
            rows.append(
                {
                    "advertisement_id": ADVERTISEMENT,
                    "client_name": f"pc{i}",
                    "state": state,
                    "source_version": 1,
                    "reason": "exit code 1603" if state == "failed" else "",
                    "exit_code": 1603 if state == "failed" else 0 if state == "succeeded" else None,
                    "restart_required": False,
                    "source_dp_id": standard + i % branches + 1,
                    "boundary_id": i % branches + 1,
                    "at": now - timedelta(seconds=i),
                }
            )
        s.bulk_insert_mappings(DeploymentStateRow, rows)  # type: ignore[arg-type]
        held = set(
            s.scalars(
                select(PackageDistributionPoint.dp_id).where(
                    PackageDistributionPoint.package_id == PACKAGE
                )
            )
        )
        dp_rows = []
        for dp_id in range(1, standard + branches + 1):
            if dp_id in held:
                continue
            state = "install_pending" if dp_id % 10 == 0 else "installed"
            state = "install_failed" if dp_id % 97 == 0 else state
            dp_rows.append(
                {
                    "package_id": PACKAGE,
                    "dp_id": dp_id,
                    "state": state,
                    "source_version": 1,
                    "origin": "on_demand" if dp_id > standard else "admin",
                    "detail": state,
                    "attempts": 1,
                    "updated_at": now,
                    "pulled_bytes": 25 * 2**20 if dp_id > standard else 0,
                    "served_bytes": 50 * 25 * 2**20,
                }
            )
        s.bulk_insert_mappings(PackageDistributionPoint, dp_rows)  # type: ignore[arg-type]
        s.bulk_insert_mappings(
            OnDemandRequest,  # type: ignore[arg-type]
            [
                {
                    "package_id": PACKAGE,
                    "source_version": 1,
                    "dp_id": standard + b + 1,
                    "client_name": f"pc{b}",
                    "state": "provisioned",
                    "created_at": now,
                    "provisioned_at": now,
                }
                for b in range(1, 501)
            ],
        )
    db.dispose()


def settle(url: str) -> None:
    """What a site's database is like after a while: statistics gathered and, on
    PostgreSQL, the visibility map set (autovacuum), so index-only scans need no heap."""
    db = Database(url)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(
            "VACUUM ANALYZE" if db.engine.dialect.name == "postgresql" else "ANALYZE"
        )
    db.dispose()


def time_calls(http: httpx.Client, path: str, params: dict[str, object] | None) -> float:
    started = time.perf_counter()
    answer = http.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, answer.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--db", default=None, help="PostgreSQL URL (a fresh schema is made)")
    args = parser.parse_args()
    args.workers = 1
    data = Path(tempfile.mkdtemp(prefix="peerdp-bench-status-"))
    schema = new_pg_schema(args.db) if args.db else None
    url = pg_schema_url(args.db, schema) if args.db and schema else f"sqlite:///{data / 'site.db'}"
    try:
        started = time.monotonic()
        populate(url)
        add_status(url)
        settle(url)
        print(f"populated in {time.monotonic() - started:.1f}s ({url.split('?')[0]})")
        measure(data, url, args)
    finally:
        if args.db and schema:
            drop_pg_schema(args.db, schema)
        shutil.rmtree(data, ignore_errors=True)


def measure(data: Path, url: str, args: argparse.Namespace) -> None:
    server, site = start_site(data, url, args)
    times: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    try:
        headers = {"Authorization": "Bearer bench"}
        with httpx.Client(base_url=site, headers=headers, timeout=60) as http:
            check = http.get(ENDPOINTS["advertisement status"][0]).json()
            assert check["total"] == SHAPE.clients, check["total"]
            assert len(check["boundaries"]) == SHAPE.branches
            package = http.get(ENDPOINTS["package status (2,050 DPs)"][0]).json()
            assert package["dps_total"] == SHAPE.standard_dps + SHAPE.branches
            print(
                f"advertisement 1: {check['total']} clients, {len(check['boundaries'])} "
                f"boundaries; package: installed on {package['installed']} of "
                f"{package['dps_total']} DPs, {len(package['on_demand'])} on-demand requests"
            )
            signed_in = http.post(
                "/console/sign-in", data={"credential": "bench"}, headers={"Origin": site}
            )
            assert signed_in.status_code == 303, signed_in.text
            for _ in range(5):
                for path, params in ENDPOINTS.values():
                    time_calls(http, path, params)
            for _ in range(args.calls):
                for name, (path, params) in ENDPOINTS.items():
                    times[name].append(time_calls(http, path, params))
    finally:
        server.terminate()
        server.wait(30)
    print(f"{args.calls} calls each, one connection, ms:")
    print(f"{'endpoint':<48}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, samples in times.items():
        p50 = statistics.median(samples)
        p99 = statistics.quantiles(samples, n=100)[98]
        print(f"{name:<48}{p50:>8.1f}{p99:>8.1f}{max(samples):>8.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: how `peerdp site serve --workers N` starts and stops with open long-polls.

Starts a real site server on a fresh PostgreSQL schema, measures how long after its
"listening on" line `/health` first answers, registers machines and opens one policy
long-poll per machine (`wait=120`, spread over the workers by the kernel), then sends
SIGTERM and measures how long the server takes to exit, what each long-poll got, and
whether the server's log shows a traceback. Each round runs the reference, one process
(`--workers 1`), then N workers, each a fresh server on a fresh schema; medians count.

    .venv/bin/python bench/bench_site_stop.py [--workers 2] [--polls 20] [--rounds 3]
                                              [--db postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

DEFAULT_PG = os.environ.get("PEERDP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def one_round(base: str, workers: int, polls: int) -> dict[str, object]:
    schema = f"bench_stop_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        with tempfile.TemporaryDirectory(prefix="peerdp-bench-stop-") as tmp:
            return _measure(Path(tmp), schema_url(base, schema), workers, polls)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _measure(data: Path, db: str, workers: int, polls: int) -> dict[str, object]:
    token = secrets.token_urlsafe(12)
    log = (data / "site.log").open("w+b")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "peerdp", "site", "serve", "--data-dir", str(data / "site")),
            *("--db", db, "--port", "0", "--workers", str(workers)),
        ],
        env={**os.environ, "PEERDP_ADMIN_TOKEN": token},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert server.stderr is not None
    while "listening on" not in (line := server.stderr.readline().decode()):
        if not line:
            raise RuntimeError("the site server did not start")
    announced = time.monotonic()
    url = re.search(r"(https?://\S+)", line)[1]  # type: ignore[index]
    threading.Thread(target=lambda: log.write(server.stderr.read()), daemon=True).start()  # type: ignore[union-attr]
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.01)
    healthy_after = time.monotonic() - announced
    admin = httpx.Client(base_url=url + "/api/v1", headers={"Authorization": f"Bearer {token}"})
    answers: list[int | str] = []
    threads = []
    for i in range(polls):
        enrol = admin.post("/enrolment-tokens", json={"role": "client", "max_uses": 1})
        body = {"token": enrol.json()["token"], "name": f"PC{i:03}", "ip_addresses": ["10.9.0.1"]}
        reg = httpx.post(url + "/mp/v1/register", json=body).json()
        headers = {"Authorization": f"Bearer {reg['credential']}"}
        first = httpx.get(url + "/mp/v1/policy", headers=headers).json()

        def poll(headers: dict[str, str] = headers, since: int = first["version"]) -> None:
            try:
                got = httpx.get(
                    url + "/mp/v1/policy",
                    params={"since": since, "wait": 120},
                    headers=headers,
                    timeout=180,
                )
                answers.append(got.status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

        threads.append(threading.Thread(target=poll, daemon=True))
    for thread in threads:
        thread.start()
    waiting(url, polls)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    code = server.wait(60)
    stop_s = time.monotonic() - started
    for thread in threads:
        thread.join(10)
    time.sleep(0.2)
    log.seek(0)
    text = log.read().decode(errors="replace")
    return {
        "healthy_after_s": healthy_after,
        "stop_s": stop_s,
        "exit": code,
        "answers": dict(Counter(answers)),
        "tracebacks": text.count("Traceback"),
    }


def waiting(url: str, polls: int) -> None:
    """Until the server's gauge says every long-poll waits (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics").text
        found = re.search(r"^peerdp_mp_policy_waiting (\S+)", text, re.MULTILINE)
        if found and float(found[1]) >= polls:
            return
        time.sleep(0.1)
    print(f"not all {polls} long-polls were waiting when the server was stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default=DEFAULT_PG)
    args = parser.parse_args()
    results: dict[int, list[dict[str, object]]] = {1: [], args.workers: []}
    for n in range(args.rounds):
        for workers in results:  # the reference, one process, then N workers, each round
            result = one_round(args.db, workers, args.polls)
            print(f"round {n + 1}, --workers {workers}: {result}", flush=True)
            results[workers].append(result)
    print(f"medians of {args.rounds} rounds, {args.polls} open long-polls:")
    for workers, rows in results.items():
        stops = [float(r["stop_s"]) for r in rows]  # type: ignore[arg-type]
        ready = [float(r["healthy_after_s"]) for r in rows]  # type: ignore[arg-type]
        answers: Counter[object] = Counter()
        for row in rows:
            answers.update(dict(row["answers"]))  # type: ignore[call-overload]
        print(
            f"--workers {workers}: stop {statistics.median(stops):.2f} s; /health answers "
            f"{statistics.median(ready):.2f} s after 'listening on'; long-poll answers "
            f"{dict(answers)}; tracebacks {sum(int(r['tracebacks']) for r in rows)}"  # type: ignore[call-overload]
        )


if __name__ == "__main__":
    main()

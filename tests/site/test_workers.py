"""`peerdp site serve --workers 2` (PostgreSQL) as real processes: it says it listens once
every worker accepts connections, /metrics adds up every worker's counts, and SIGTERM
answers every worker's open long-polls with the policy and stops cleanly.

Which worker answers is told by `/health` ("process"); an httpx client keeps its one
connection, so its later requests go to that same worker.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from peerdp.net import bind
from peerdp.site.workers import Supervisor, WorkerFailed
from tests.helpers.api import ok, unique, wait_for
from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site, stop_process
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # real site-server processes

SCRAPE_TOKEN = "scrape-secret"


@dataclass
class Workers:
    site: SiteProcess
    tmp: Path  # the server's TMPDIR: where its per-run metrics directory lives
    world: World
    headers: httpx.Headers = field(default_factory=httpx.Headers)  # a client's credential
    # /metrics as first scraped, right after the "listening on" line and one /health.
    at_start: dict[str, float] = field(default_factory=dict)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with pg_schema("w") as url:
        site = start_site(
            tmp_path / "site",
            url,
            extra_env={"TMPDIR": str(tmp)},
            args=("--workers", "2", "--metrics-token", SCRAPE_TOKEN),
        )
        try:
            with httpx.Client() as scraper:
                at_start = scrape(scraper, site)
            world = build(site)
            with world.client(unique("pc")) as client:
                yield Workers(site, tmp, world, client.headers, at_start)
        finally:
            stop_process(site.process)


def connection(w: Workers) -> tuple[httpx.Client, int]:
    """A new MP client connection, and the process of the worker that serves it."""
    client = httpx.Client(base_url=w.site.url + "/mp/v1", headers=w.headers, timeout=60)
    return client, ok(client.get(w.site.url + "/health"))["process"]


def one_per_worker(w: Workers, per_worker: int = 1) -> dict[int, list[httpx.Client]]:
    """`per_worker` connections to each of the two workers (new ones until both have them;
    the others are closed)."""
    found: dict[int, list[httpx.Client]] = {}
    for _ in range(400):
        if len(found) == 2 and all(len(c) >= per_worker for c in found.values()):
            return found
        client, pid = connection(w)
        if len(found.setdefault(pid, [])) < per_worker:
            found[pid].append(client)
        else:
            client.close()
    raise AssertionError(f"400 connections did not reach two workers: {sorted(found)}")


def scrape(client: httpx.Client, site: SiteProcess) -> dict[str, float]:
    """Every sample of one /metrics answer (on `client`'s connection), by name and labels."""
    text = ok_text(client.get(site.url + "/metrics", headers=bearer(SCRAPE_TOKEN)))
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def ok_text(response: httpx.Response) -> str:
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def total(samples: dict[str, float], name: str) -> float:
    return sum(value for key, value in samples.items() if key.startswith(name + "["))


def test_metrics_add_up_across_workers_in_one_scrape(workers: Workers) -> None:
    w = workers
    per_worker = one_per_worker(w, 2)
    scrapers = {pid: clients[0] for pid, clients in per_worker.items()}
    first = {pid: scrape(client, w.site) for pid, client in scrapers.items()}
    # Both workers were serving when the server said it listens: each counts itself.
    assert w.at_start["peerdp_site_processes[]"] == 2.0
    assert [samples["peerdp_site_processes[]"] for samples in first.values()] == [2.0, 2.0]
    before = total(next(iter(first.values())), "peerdp_mp_location_answers_total")
    answered = 0
    for clients in per_worker.values():
        for client in clients:
            for _ in range(5):
                w.world.locate(client)
                answered += 1
    for client, samples in ((c, scrape(c, w.site)) for c in scrapers.values()):
        # Either worker's answer counts the requests both served.
        assert total(samples, "peerdp_mp_location_answers_total") == before + answered
        assert samples["peerdp_site_processes[]"] == 2.0
        client.close()

    # The metrics token still guards /metrics, whichever worker answers.
    for _ in range(4):
        assert httpx.get(w.site.url + "/metrics").status_code == 401
        assert httpx.get(w.site.url + "/metrics", headers=bearer("wrong")).status_code == 401
        admin = httpx.get(w.site.url + "/metrics", headers=bearer(w.site.admin_token))
        assert admin.status_code == 200
    for clients in per_worker.values():
        for client in clients[1:]:
            client.close()


def test_sigterm_answers_every_workers_long_polls_and_stops_cleanly(workers: Workers) -> None:
    w = workers
    per_worker = one_per_worker(w, 3)
    polls = [client for clients in per_worker.values() for client in clients]
    since = ok(polls[0].get("/policy"))["version"]
    answers: list[Any] = []

    def long_poll(client: httpx.Client) -> None:
        try:
            got = client.get("/policy", params={"since": since, "wait": 240}, timeout=300)
            answers.append((got.status_code, got.json() if got.status_code == 200 else got.text))
        except httpx.HTTPError as exc:
            answers.append((type(exc).__name__, str(exc)))

    threads = [threading.Thread(target=long_poll, args=(client,)) for client in polls]
    for thread in threads:
        thread.start()
    with httpx.Client() as scraper:  # the gauge sums the waiting long-polls of both workers
        wait_for(
            "every long-poll to wait",
            lambda: total(scrape(scraper, w.site), "peerdp_mp_policy_waiting") == len(polls),
        )
    metrics_dirs = [p.name for p in w.tmp.iterdir() if p.name.startswith("peerdp-metrics-")]
    assert len(metrics_dirs) == 1, metrics_dirs

    w.site.process.send_signal(signal.SIGTERM)
    code = w.site.process.wait(60)  # the grace time is 5 s; a hang fails here, not forever
    for thread in threads:
        thread.join(30)
    for client in polls:
        client.close()

    assert code == 0
    # Every long-poll, on both workers, got the current policy as a normal answer.
    assert [status for status, _ in answers] == [200] * len(polls), answers
    assert all(body["version"] == since and body["signature"] for _, body in answers)
    log = "".join(w.site.lines)
    assert "Traceback" not in log and "CancelledError" not in log, log
    # The run's metrics directory is gone with it.
    assert [p.name for p in w.tmp.iterdir() if p.name.startswith("peerdp-metrics-")] == []


def test_a_worker_that_dies_is_replaced_and_workers_stop_with_their_supervisor(
    workers: Workers,
) -> None:
    w = workers
    per_worker = one_per_worker(w)
    victim = min(per_worker)
    os.kill(victim, signal.SIGKILL)
    with httpx.Client() as scraper:
        wait_for(
            "a new worker in place of the killed one",
            lambda: _two_workers_without(w, victim, scraper),
            timeout=120,
            every=0.5,
        )
    survivors = set(per_worker)
    for _ in range(40):
        client, pid = connection(w)
        survivors.add(pid)
        client.close()
    w.site.process.kill()  # the supervisor dies without a word: its workers stop by themselves
    w.site.process.wait()
    for pid in survivors:
        wait_for(f"worker {pid} to stop", lambda pid=pid: not _alive(pid), timeout=60)
    for clients in per_worker.values():
        for client in clients:
            client.close()


def _two_workers_without(w: Workers, victim: int, scraper: httpx.Client) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        pid = ok(scraper.get(w.site.url + "/health"))["process"]
        return pid != victim and scrape(scraper, w.site)["peerdp_site_processes[]"] == 2.0
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent's reaper) has stopped too.
    with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"
    return False


def broken_app() -> Any:
    """An app factory that fails, as a worker's would if it could not open the site."""
    raise RuntimeError("this site cannot open")


def test_a_worker_that_cannot_start_stops_the_server_unannounced(tmp_path: Path) -> None:
    options = {"app": f"{__name__}:broken_app", "factory": True, "log_level": "critical"}
    announced: list[bool] = []
    supervisor = Supervisor(options, bind("127.0.0.1", 0), 2, str(tmp_path))
    try:
        with pytest.raises(WorkerFailed, match=r"exited with code 1 while starting"):
            supervisor.run(lambda: announced.append(True))
    finally:
        gc.unfreeze()  # the supervisor freezes what it holds; this is pytest's process
    assert announced == []
    assert [w.process.exitcode for w in supervisor.workers if w.process.exitcode is None] == []


def test_a_change_wakes_only_the_machines_it_concerns_on_either_worker(workers: Workers) -> None:
    """Each worker hears the change through PostgreSQL and releases only its own waiters
    whose policy reads what changed; the others stay held and are not recomputed."""
    w = workers
    pids = sorted(one_per_worker(w))
    admin, world = w.site.admin(), w.world
    other = ok(admin.post("/collections", json={"name": unique("other")}), 201)
    advertisement = {
        "package_id": world.package["id"],
        "program_name": world.advertisement["program_name"],
    }
    ok(
        admin.post(
            "/advertisements",
            json={**advertisement, "name": unique("a"), "collection_id": other["id"]},
        ),
        201,
    )
    concerned, bystanders = [], []
    for pid in pids:
        member = world.client(unique("in"))
        concerned.append(connection_to(w, member.headers, pid))
        ok(
            admin.post(
                f"/collections/{other['id']}/members",
                json={"member_names": [name := unique("out")]},
            )
        )
        outsider = world.register("client", name, ip_addresses=[f"{world.branch_net}.31"])
        bystanders.append(connection_to(w, outsider.headers, pid))
    answers: dict[int, httpx.Response] = {}

    def long_poll(index: int, client: httpx.Client) -> None:
        since = ok(client.get("/policy"))["version"]
        answers[index] = client.get("/policy", params={"since": since, "wait": 120}, timeout=150)

    polls = concerned + bystanders
    threads = [
        threading.Thread(target=long_poll, args=item, daemon=True) for item in enumerate(polls)
    ]
    for thread in threads:
        thread.start()
    with httpx.Client() as scraper:

        def computed() -> float:
            return total(scrape(scraper, w.site), "peerdp_mp_policy_computations_total")

        wait_for(
            "every long-poll to wait",
            lambda: total(scrape(scraper, w.site), "peerdp_mp_policy_waiting") == len(polls),
        )
        before = computed()
        ok(
            admin.post(
                "/advertisements",
                json={
                    **advertisement,
                    "name": unique("a"),
                    "collection_id": world.collection["id"],
                },
            ),
            201,
        )
        for thread in threads[: len(concerned)]:
            thread.join(30)
        assert sorted(answers) == list(range(len(concerned)))
        assert all(len(answers[i].json()["advertisements"]) == 2 for i in answers)
        # Per worker: its concerned client, their shared body and the collection read once.
        assert computed() - before <= len(concerned) + 2 * len(pids)
        assert total(scrape(scraper, w.site), "peerdp_mp_policy_waiting") == len(bystanders)
    # A change for the others' collection lets them go too, before their connections close.
    ok(
        admin.post(
            "/advertisements",
            json={**advertisement, "name": unique("a"), "collection_id": other["id"]},
        ),
        201,
    )
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == list(range(len(polls)))
    for client in polls:
        client.close()


def connection_to(w: Workers, headers: httpx.Headers, pid: int) -> httpx.Client:
    """A new MP connection with these credentials to the worker `pid`."""
    for _ in range(400):
        client = httpx.Client(base_url=w.site.url + "/mp/v1", headers=headers, timeout=60)
        if ok(client.get(w.site.url + "/health"))["process"] == pid:
            return client
        client.close()
    raise AssertionError(f"400 connections did not reach worker {pid}")

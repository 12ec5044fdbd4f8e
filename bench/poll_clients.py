"""Many policy long-polls from one process: raw asyncio sockets and a minimal HTTP/1.1.

An HTTP client library costs too much memory and CPU per connection for 9,000 of them in
one process, so each poll is a plain keep-alive socket bound to its own loopback source
address (several processes use several addresses: each has its own ephemeral ports).
The process is driven through a `multiprocessing` pipe by the benchmark; see
`PollFleet` for the commands. Every answer is recorded as (client, monotonic time,
status, version): CLOCK_MONOTONIC is the machine's, so the benchmark compares it with
its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from policy_world import credential

VERSION = re.compile(rb'"version":\s*(\d+)')
CONNECTING_AT_ONCE = 256  # connects in flight per process, so the listen queue keeps up
Event = tuple[int, float, int, int]  # client, monotonic time, status (-1: broken), version


@dataclass
class Target:
    host: str
    port: int
    source: str  # loopback source address this process binds to


@dataclass
class Polls:
    target: Target
    clients: list[int]
    versions: dict[int, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    concerned: set[int] = field(default_factory=set)
    concerned_answered: set[int] = field(default_factory=set)
    versions_at_mark: dict[int, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    errors: int = 0


def policy_request(target: Target, client: int, since: int | None, wait: float) -> bytes:
    query = "" if since is None else f"?since={since}&wait={wait:g}"
    etag = "" if since is None else f'If-None-Match: "{since}"\r\n'
    return (
        f"GET /mp/v1/policy{query} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Authorization: Bearer {credential(client)}\r\n{etag}\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if length is not None:
        return status, await reader.readexactly(int(length[1]))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        return status, await read_chunked(reader)
    return status, b""


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size + 2)
    await reader.readuntil(b"\r\n")
    return body


async def connect(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(target.host, target.port, local_addr=(target.source, 0))


def record(polls: Polls, client: int, status: int, body: bytes) -> None:
    found = VERSION.search(body) if status == 200 else None
    version = max(polls.versions.get(client, 0), int(found[1]) if found else 0)
    polls.versions[client] = version
    polls.events.append((client, time.monotonic(), status, version))
    if client in polls.concerned and version > polls.versions_at_mark.get(client, 0):
        polls.concerned_answered.add(client)


async def learn(polls: Polls, concurrency: int) -> int:
    """Each client's current policy version, by a plain GET (no `since`)."""
    queue = list(reversed(polls.clients))

    async def worker() -> None:
        reader, writer = await connect(polls.target)
        try:
            while queue:
                client = queue.pop()
                writer.write(policy_request(polls.target, client, None, 0))
                status, body = await read_response(reader)
                if status != 200:
                    polls.errors += 1
                record(polls, client, status, body)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(queue)))))
    return sum(1 for c in polls.clients if polls.versions.get(c, 0) > 0)


async def hold_one(
    polls: Polls,
    client: int,
    wait: float,
    period: float,
    gate: asyncio.Semaphore,
    sent: list[int],
) -> None:
    """One connection long-polling for `client` for ever: each answer is recorded and
    the client polls again with the version it now has (at once, or `period` seconds
    after its previous poll began)."""
    async with gate:
        try:
            reader, writer = await connect(polls.target)
        except OSError:
            polls.errors += 1
            sent.append(client)
            return
        began = time.monotonic()
        writer.write(policy_request(polls.target, client, polls.versions.get(client, 0), wait))
        sent.append(client)
    try:
        while True:
            status, body = await read_response(reader)
            record(polls, client, status, body)
            if status not in (200, 304):
                await asyncio.sleep(1)
            await asyncio.sleep(max(0.0, began + period - time.monotonic()))
            began = time.monotonic()
            since = polls.versions.get(client, 0)
            writer.write(policy_request(polls.target, client, since, wait))
    except (OSError, asyncio.IncompleteReadError, ValueError):
        polls.errors += 1
        polls.events.append((client, time.monotonic(), -1, polls.versions.get(client, 0)))
    finally:
        writer.close()


async def hold(polls: Polls, wait: float, period: float = 0.0) -> int:
    """Open one long-poll per client; returns once every request is written."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    sent: list[int] = []
    polls.tasks = [
        asyncio.create_task(hold_one(polls, c, wait, period, gate, sent)) for c in polls.clients
    ]
    while len(sent) < len(polls.clients):
        await asyncio.sleep(0.05)
    return len(sent)


def mark(polls: Polls, concerned: Iterable[int]) -> None:
    """Start a new window: forget the events, and watch these clients for a new version."""
    polls.events = []
    polls.concerned = set(concerned) & set(polls.clients)
    polls.concerned_answered = set()
    polls.versions_at_mark = dict(polls.versions)


async def stop(polls: Polls) -> None:
    for task in polls.tasks:
        task.cancel()
    await asyncio.gather(*polls.tasks, return_exceptions=True)
    polls.tasks = []


async def serve(conn: Connection, polls: Polls) -> None:
    """Carry out the benchmark's commands until told to stop."""
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def receive() -> None:
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):  # the benchmark is gone
            loop.remove_reader(conn.fileno())
            commands.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), receive)
    while True:
        command, *params = await commands.get()
        if command == "learn":
            conn.send((await learn(polls, *params), polls.errors))
        elif command == "hold":
            conn.send((await hold(polls, *params), polls.errors))
        elif command == "mark":
            mark(polls, *params)
            conn.send(True)
        elif command == "progress":
            conn.send((len(polls.concerned_answered), len(polls.concerned)))
        elif command == "events":
            conn.send((polls.events, polls.versions_at_mark, polls.errors))
        elif command == "stop":
            await stop(polls)
            with contextlib.suppress(OSError):
                conn.send(True)
            return


def run(conn: Connection, target: Target, clients: list[int]) -> None:
    """A client process's body."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(conn, Polls(target, clients)))


class PollFleet:
    """Client processes, each holding some of the clients' polls from its own address."""

    def __init__(self, host: str, port: int, groups: list[list[int]], first_source: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for n, clients in enumerate(groups):
            ours, theirs = context.Pipe()
            target = Target(host, port, f"127.0.0.{first_source + n}")
            process = context.Process(target=run, args=(theirs, target, clients), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def ask(self, *command: Any) -> list[Any]:
        """Send `command` to every process, then collect their answers."""
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if process.is_alive():
                with contextlib.suppress(OSError, EOFError):
                    pipe.send(("stop",))
                    if pipe.poll(30):
                        pipe.recv()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

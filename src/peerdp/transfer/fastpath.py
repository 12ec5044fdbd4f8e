"""The fast path for big bodies: read straight from the socket, write and hash on threads.

httpx hands a body over in 64 KiB pieces through h11, which costs more CPU than hashing
it; a verified 1 GiB pull then ran at half of curl's speed. For a big file the download
engine (`peerdp.transfer.download`) reads the body here in 1 MiB pieces, and writes and
hashes them on two helper threads, so receiving, writing and verifying each get a core.

Knows nothing of sources or retries: a body that stops early raises BodyCut, which the
engine reports as that source's failure.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import httpx

from peerdp.content.objects import PartialWriter

SOCKET_READ_BYTES = 1 << 20


class BodyCut(Exception):
    """The body stopped before its end: the socket failed (the cause) or was closed."""


def socket_body(resp: httpx.Response, length: int) -> Iterator[bytes | memoryview]:
    """The body of a big response in 1 MiB pieces read straight from the socket.

    The first piece still comes through httpx (it drains what h11 has buffered); after it
    the connection is read directly and is closed, not reused, when the response closes.
    Every byte received is yielded before a BodyCut, so a cut body can be resumed.
    """
    pieces = resp.iter_raw()
    first = next(pieces, b"")
    yield first
    left = length - len(first)
    stream = resp.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:  # not a plain HTTP/1.1 connection: stay with httpx
        yield from pieces
        return
    timeout = resp.request.extensions.get("timeout", {}).get("read")
    sock.settimeout(timeout)
    while left > 0:
        buffer = memoryview(bytearray(min(SOCKET_READ_BYTES, left)))
        filled = 0
        try:
            while filled < len(buffer):
                got = sock.recv_into(buffer[filled:])
                if not got:
                    break
                filled += got
        except OSError as exc:  # a timeout is an OSError too
            if filled:
                yield buffer[:filled]
            raise BodyCut("the connection failed") from exc
        if filled:
            yield buffer[:filled]
        left -= filled
        if filled < len(buffer):
            raise BodyCut(
                f"the server closed the connection {left} bytes before the end of the body"
            )


class Pipeline:
    """Writes and hashes a body on two helper threads while the caller receives.

    os.write and hashlib release the GIL, so receiving, writing and verifying each
    get a core instead of adding up on one.
    """

    def __init__(self, writer: PartialWriter, depth: int = 16) -> None:
        self._error: BaseException | None = None
        self._queues: list[queue.Queue[bytes | memoryview | None]] = []
        self._threads: list[threading.Thread] = []
        for name, step in (("write", writer.append), ("hash", writer.hash)):
            work: queue.Queue[bytes | memoryview | None] = queue.Queue(depth)
            thread = threading.Thread(
                target=self._run, args=(work, step), name=f"peerdp-partial-{name}"
            )
            self._queues.append(work)
            self._threads.append(thread)
            thread.start()

    def _run(
        self,
        work: queue.Queue[bytes | memoryview | None],
        step: Callable[[bytes | memoryview], None],
    ) -> None:
        while (chunk := work.get()) is not None:
            if self._error is None:  # after a failure keep draining so put() never blocks
                try:
                    step(chunk)
                except BaseException as exc:
                    self._error = exc

    def write(self, data: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        for work in self._queues:
            work.put(data)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        """Wait until every queued piece is written and hashed; re-raise a write error."""
        for work in self._queues:
            work.put(None)
        for thread in self._threads:
            thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

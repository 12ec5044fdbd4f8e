"""How much an uploaded tar archive may hold, counted as it is unpacked.

A compressed archive says nothing of its size: a megabyte of gzip can unpack to a
gibibyte of zeros. So the limits are on what would be stored (the files' bytes, as tar
headers declare them) and on the number of members, and the decompressed stream itself
may not run past what those members need plus their headers. Reading stops at the first
byte over a limit.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass
from typing import IO, Final, Protocol

from peerdp.content.objects import ContentError

# What tar may need around each member: its header block, a PAX or GNU long-name record
# (a path may be 4 KiB) with its own header, and padding to the next block.
MEMBER_OVERHEAD: Final = 8 * 1024
# End-of-archive blocks, and how far tar reads ahead (one 10 KiB record).
STREAM_SLACK: Final = 32 * 1024
BLOCK: Final = 512


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ArchiveTooLarge(ContentError):
    """An archive holds more (bytes or members) than the site takes in one upload."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Most file bytes (uncompressed, as stored) and members one archive may hold."""

    max_bytes: int
    max_members: int

    @property
    def max_stream_bytes(self) -> int:
        """Most bytes a whole archive within the limits can take, uncompressed or not."""
        return self.max_bytes + self.max_members * MEMBER_OVERHEAD + STREAM_SLACK


class ArchiveGauge:
    """Counts an archive's members and bytes against its limits as tar reads it."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.members = 0
        self.file_bytes = 0
        self._allowed = STREAM_SLACK + MEMBER_OVERHEAD  # the first member's headers
        self.read = 0

    def member(self, size: int) -> None:
        """Count one member (its declared size, 0 for a directory) before its data is read."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveTooLarge(
                f"archive has more than {self.limits.max_members} members "
                "(the limit is PEERDP_MAX_UPLOAD_MEMBERS)"
            )
        self.file_bytes += size
        if self.file_bytes > self.limits.max_bytes:
            raise ArchiveTooLarge(
                f"archive's files add up to more than {self.limits.max_bytes} bytes "
                "uncompressed (the limit is PEERDP_MAX_UPLOAD_BYTES)"
            )
        # This member's data, rounded to whole blocks, and the next member's headers.
        self._allowed += -(-size // BLOCK) * BLOCK + MEMBER_OVERHEAD

    def consumed(self, count: int) -> None:
        self.read += count
        if self.read > self._allowed:
            raise ArchiveTooLarge(
                f"archive's tar headers are larger than its {self.members} member(s) need "
                f"(read {self.read} bytes unpacked)"
            )


class _GaugedReader:
    """The decompressed stream, counted by a gauge on every read."""

    def __init__(self, stream: Readable, gauge: ArchiveGauge) -> None:
        self._stream = stream
        self._gauge = gauge

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._gauge.consumed(len(data))
        return data


class _Prefixed:
    """A stream whose first bytes were already read (to tell its compression)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def decompressed(fileobj: IO[bytes], gauge: ArchiveGauge) -> IO[bytes]:
    """The archive's tar bytes (gzip, bzip2 and xz undone by their magic), gauged."""
    head = fileobj.read(6)
    raw: IO[bytes] = _Prefixed(head, fileobj)  # type: ignore[assignment]  # read() is all they use
    stream: Readable
    # The decompressors hold no file of their own: closing the caller's stream is enough.
    if head.startswith(b"\x1f\x8b"):
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif head.startswith(b"BZh"):
        stream = bz2.BZ2File(raw, mode="rb")
    elif head.startswith(b"\xfd7zXZ\x00"):
        stream = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115
    else:
        stream = raw
    return _GaugedReader(stream, gauge)  # type: ignore[return-value]

"""The write/hash pipeline: every piece written and hashed in order; a write error surfaces.

The socket reader is tested through download_package (tests/transfer/test_download.py
cuts and stalls bodies on every read path)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from peerdp.content.objects import ObjectStore
from peerdp.transfer.fastpath import Pipeline


def test_pipeline_writes_and_hashes_every_piece(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    with store.open_partial(digest) as writer:
        with Pipeline(writer, depth=2) as pipeline:
            for start in range(0, len(data), 7001):
                pipeline.write(memoryview(data)[start : start + 7001])
        assert (writer.size, writer.hexdigest()) == (len(data), digest)
        writer.commit()
    assert store.has(digest)


def test_pipeline_raises_a_write_error(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with store.open_partial("0" * 64) as writer:

        def broken(_data: bytes | memoryview) -> None:
            raise OSError(28, "No space left on device")

        writer.append = broken  # type: ignore[method-assign,assignment]
        with pytest.raises(OSError, match="No space left"), Pipeline(writer) as pipeline:
            for _ in range(100):
                pipeline.write(b"x" * 1000)

"""Small tmpfs mounts for tests of full and read-only disks (skipped where mounting is not
allowed: the test says so rather than pretending)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str = "2m", read_only: bool = False) -> Iterator[Path]:
    """A fresh tmpfs of `size` on `path` (created), read-only if asked; unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}): needs root and mount(8)")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        if read_only:
            remount = _mount("-o", "remount,ro", str(path))
            assert remount.returncode == 0, remount.stderr
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)

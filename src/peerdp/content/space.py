"""A full disk, said so a person can act on it: which store filled up, how much room was
left there and how much the request needed."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# Out of room on the file system, or over the owner's quota on it.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FULL


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def disk_full_detail(store: str, root: Path, exc: OSError, needed: int | None) -> str:
    """One sentence for a write into `root` (the `store`) that found no room."""
    why = "is over its disk quota" if exc.errno == errno.EDQUOT else "has no space left"
    facts = []
    if (free := free_bytes(root)) is not None:
        facts.append(f"{free} bytes free")
    if needed is not None:
        facts.append(f"this request needs {needed} bytes")
    said = f" ({', '.join(facts)})" if facts else ""
    return f"{store} at {root} {why}{said}: free some space or give it a larger disk"

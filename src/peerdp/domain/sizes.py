"""Byte counts as people read them, in binary units (KiB, MiB, ...): the CLI and the console."""

from __future__ import annotations


def human_size(count: int) -> str:
    """`512 B`, `1.5 KiB`, `2.0 GiB`."""
    amount = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")

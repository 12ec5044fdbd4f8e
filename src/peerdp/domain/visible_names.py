"""Whether a name shows what it is: no invisible or text-reordering characters.

A name an administrator reads in a list (a package, a program, a collection, a boundary,
a DP, a machine) or a file path in a package must not hide characters: a right-to-left
override (U+202E) makes ``exe.txt`` display as ``txt.exe``, a zero-width space (U+200B)
makes two different names look the same. Refused are the Unicode categories Cc
(controls), Cf (format characters: bidirectional controls, zero-width characters),
Zl and Zp (line and paragraph separators).

Pure code: standard library only.
"""

from __future__ import annotations

import unicodedata
from typing import Final

INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def invisible_character(text: str) -> str | None:
    """The first invisible character of `text`, described (``U+202E RIGHT-TO-LEFT
    OVERRIDE``), or None if every character shows."""
    if text.isprintable():  # the common case, in C: printable text has none of them
        return None
    for character in text:
        if unicodedata.category(character) in INVISIBLE_CATEGORIES:
            name = unicodedata.name(character, "control character")
            return f"U+{ord(character):04X} {name}"
    return None


def check_visible(text: str, what: str = "name") -> str:
    """`text` if every character shows, else ValueError naming the one that does not."""
    found = invisible_character(text)
    if found is not None:
        raise ValueError(f"{what} must not contain invisible characters (found {found})")
    return text

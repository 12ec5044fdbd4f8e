"""The shapes of the identifiers content travels under.

A package ID is the three-character site code and five hex digits (``PS100001``); a
source version is a positive integer; a content object is named by its SHA-256 in
lowercase hex. Every role that takes one of these from a path, a body or a file name
checks it here.
"""

from __future__ import annotations

import re
from typing import Final

PACKAGE_ID_PATTERN: Final = r"[A-Za-z0-9]{3}[0-9A-Fa-f]{5}"
# The site writes package IDs in upper case; its admin API takes any case
# (`upper_package_id`), while the content roles check only the safe shape above (a file or
# path name).
API_PACKAGE_ID: Final = r"^[A-Z0-9]{3}[0-9A-F]{5}$"
SHA256_PATTERN: Final = r"[0-9a-f]{64}"

_PACKAGE_ID = re.compile(PACKAGE_ID_PATTERN)
_SHA256 = re.compile(SHA256_PATTERN)


def is_package_id(value: object) -> bool:
    """True for a package ID: three letters or digits, then five hex digits."""
    return isinstance(value, str) and _PACKAGE_ID.fullmatch(value) is not None


def upper_package_id(value: str) -> str:
    """A package ID as the site writes it (`ps100001` -> `PS100001`); anything else as given."""
    return value.upper() if is_package_id(value) else value


def is_sha256(value: object) -> bool:
    """True for a SHA-256 digest written as 64 lowercase hex digits."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None

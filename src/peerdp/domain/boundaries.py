"""Boundaries: the network locations that tie clients to distribution points.

A boundary is an IPv4/IPv6 subnet (``10.1.0.0/16``, ``fd00::/64``), an address range
(``10.1.0.1-10.1.0.200``) or an Active Directory site name (``BRANCH-01``), each with a
connection class: ``fast`` (LAN) or ``slow``.

:func:`parse_boundary_value` validates what an administrator typed and says in words what
is wrong. :class:`BoundaryIndex` answers "which boundaries is this machine in?" in
logarithmic time, whatever the number of boundaries, so the management point can ask it
on every content-location request.

Pure code: no I/O, standard library only.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

from peerdp.domain.visible_names import check_visible

BoundaryType = Literal["ip_subnet", "ip_range", "ad_site"]
Connection = Literal["fast", "slow"]
MatchedBy = Literal["subnet", "range", "ad_site"]

BOUNDARY_TYPES: tuple[BoundaryType, ...] = get_args(BoundaryType)
CONNECTIONS: tuple[Connection, ...] = get_args(Connection)

_MATCHED_BY: dict[BoundaryType, MatchedBy] = {
    "ip_subnet": "subnet",
    "ip_range": "range",
    "ad_site": "ad_site",
}


@dataclass(frozen=True, slots=True)
class Boundary:
    """A network location with its connection class."""

    id: int
    name: str
    type: BoundaryType
    value: str
    connection: Connection


@dataclass(frozen=True, slots=True)
class BoundaryMatch:
    """A boundary a machine is in, and what placed it there."""

    boundary: Boundary
    by: MatchedBy


class AddressSpan(NamedTuple):
    """The inclusive address interval of an IP boundary, as integers."""

    first: int
    last: int
    version: Literal[4, 6]


# --------------------------------------------------------------------------- parsing


def parse_boundary_value(type: BoundaryType | str, value: str) -> AddressSpan | str:
    """Validate a boundary value; answer its address span, or the AD site name.

    ``ip_subnet``: CIDR notation, IPv4 or IPv6, with an explicit prefix length (or a
    dotted netmask). Host bits are ignored here (``10.1.0.5/24`` matches as
    ``10.1.0.0/24``), so that a boundary stored before they were refused still works; new
    values go through :func:`check_boundary_input`, which refuses them.

    ``ip_range``: ``FIRST-LAST`` (spaces around the dash allowed), both of the same IP
    version, FIRST not after LAST. A range of one address is allowed.

    ``ad_site``: any non-empty name; answered stripped of surrounding spaces. Matching is
    case-insensitive.

    Raises ``ValueError`` with a message fit to show to the administrator.
    """
    if not isinstance(value, str):
        raise ValueError(f"boundary value must be text, not {value.__class__.__name__}")
    if type == "ip_subnet":
        return _parse_subnet(value)
    if type == "ip_range":
        return _parse_range(value)
    if type == "ad_site":
        return _parse_ad_site(value)
    expected = ", ".join(BOUNDARY_TYPES[:-1]) + " or " + BOUNDARY_TYPES[-1]
    raise ValueError(f"unknown boundary type {type!r}: expected {expected}")


@functools.lru_cache(maxsize=1 << 17)
def _parsed_once(type: str, value: str) -> AddressSpan | str:
    """parse_boundary_value, remembered: the index is rebuilt whole after any boundary or
    DP change, and then parses only the values it has not seen (a refused value is not
    remembered, and is parsed again to say why)."""
    return parse_boundary_value(type, value)


def canonical_boundary_value(type: BoundaryType | str, value: str) -> str:
    """The normalised text of a valid boundary value (``10.1.0.5/24`` → ``10.1.0.0/24``)."""
    parsed = parse_boundary_value(type, value)
    if isinstance(parsed, str):
        return parsed
    if type == "ip_subnet":
        return str(ipaddress.ip_network(value.strip(), strict=False))
    first, last = (
        _address_text(parsed.first, parsed.version),
        _address_text(parsed.last, parsed.version),
    )
    return f"{first}-{last}"


def _parse_subnet(value: str) -> AddressSpan:
    text = value.strip()
    if not text:
        raise ValueError("subnet must not be empty (e.g. 10.1.0.0/16 or fd00::/64)")
    if "/" not in text:
        raise ValueError(
            f"{value!r} has no prefix length: write the subnet as ADDRESS/PREFIX, e.g. {text}/24"
        )
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid IPv4 or IPv6 subnet") from None
    first = int(network.network_address)
    return AddressSpan(first, first + network.num_addresses - 1, _version(network.version))


def _parse_range(value: str) -> AddressSpan:
    # IPv6 addresses never contain "-", so the dash is unambiguous.
    parts = value.split("-")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ValueError(
            f"{value!r} is not an address range: write FIRST-LAST, e.g. 10.1.0.1-10.1.0.200"
        )
    first = _parse_range_end(parts[0], value)
    last = _parse_range_end(parts[1], value)
    if first.version != last.version:
        raise ValueError(f"address range {value!r} mixes IPv4 and IPv6 addresses")
    if int(first) > int(last):
        raise ValueError(f"first address {first} is after last address {last}")
    return AddressSpan(int(first), int(last), _version(first.version))


def _parse_range_end(text: str, whole: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(
            f"{text.strip()!r} in address range {whole!r} is not a valid IPv4 or IPv6 address"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError(f"{text.strip()!r} in address range {whole!r} must not carry a scope")
    return address


def check_boundary_input(type: BoundaryType | str, value: str) -> str:
    """A boundary value as an administrator may enter it: valid, and written the one way
    it is matched. A subnet with host bits set (``10.1.1.5/24``) or a scope
    (``fe80::%eth0/64``) is refused, naming the form to write instead (``10.1.1.0/24``),
    rather than stored as something the administrator did not type.

    Raises ``ValueError`` with a message fit to show to the administrator.
    """
    parse_boundary_value(type, value)
    if type == "ad_site":
        check_visible(value, "AD site name")
    if type == "ip_subnet":
        text = value.strip()
        address = text.split("/", 1)[0]
        if "%" in address:
            bare = address.split("%", 1)[0] + "/" + text.split("/", 1)[1]
            raise ValueError(
                f"subnet {value!r} must not carry a scope (%...): write "
                f"{canonical_boundary_value(type, bare)}"
            )
        network = ipaddress.ip_network(text, strict=False)
        if str(network.network_address) != str(ipaddress.ip_address(address)):
            raise ValueError(f"subnet {value!r} has host bits set: write {network}")
    return value


def _parse_ad_site(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("AD site name must not be empty")
    return check_visible(name, "AD site name")


def _version(version: int) -> Literal[4, 6]:
    return 4 if version == 4 else 6


def _address_text(value: int, version: Literal[4, 6]) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


# ------------------------------------------------------------------- client addresses


_FAMILIES = (socket.AF_INET, socket.AF_INET6)


# How a client is placed in boundaries: by the addresses and AD site it reports (the
# default, taken on trust), or pinned by an administrator to the address its requests come
# from as the site sees the connection (what SCCM's MP uses).
LocateBy = Literal["reported", "peer"]
LOCATE_BY: tuple[str, ...] = get_args(LocateBy)
# What each places a client by, in the words the site's status message and the CLI use.
PLACED_BY = {
    "reported": "the addresses and AD site it reports",
    "peer": "the address its requests come from, as the management point sees it",
}


def placement(
    reported: tuple[str, ...], ad_site: str | None, peer: str | None, locate_by: str
) -> tuple[tuple[str, ...], str | None]:
    """The addresses and AD site that place a client in boundaries.

    Located by "peer", only the connection's address counts: the reported addresses and
    AD site are claims the client makes, so neither is used. A peer that is not an IP
    address (no connection, a Unix socket) places the client nowhere.
    """
    if locate_by != "peer":
        return reported, ad_site
    if peer is None:
        return (), None
    bare = peer.split("%", 1)[0]  # a link-local peer's interface scope names our interface
    try:
        return (check_machine_address(bare),), None
    except ValueError:
        return (), None


def check_machine_address(text: str) -> str:
    """`text` if it is one IPv4 or IPv6 address as the site matches it, else ValueError
    saying what is wrong: not an address (``999.9.9.9``, ``abc``), a subnet
    (``10.0.0.0/8``), or a scoped IPv6 address (``fe80::1%eth0``: the scope names an
    interface of the machine, which no boundary can; the message names the bare address).
    """
    # inet_pton takes exactly one address, no scope, no spaces: the common case, in C.
    for family in _FAMILIES:
        try:
            socket.inet_pton(family, text)
            return text
        except (OSError, ValueError):
            pass
    if text != text.strip():
        raise ValueError(f"{text!r} has spaces around it: report the address alone")
    if "%" in text and client_address_key(text.split("%", 1)[0]) is not None:
        raise ValueError(
            f"{text!r} carries an interface scope (%...): report the address without it, "
            f"{text.split('%', 1)[0]}"
        )
    if "/" in text:
        raise ValueError(f"{text!r} is a subnet, not an address: report one address")
    raise ValueError(f"{text!r} is not an IPv4 or IPv6 address")


_IPV4_MAPPED_PREFIX = 0xFFFF << 32
_IPV4_MAPPED_MASK = ~((1 << 32) - 1) & ((1 << 128) - 1)


def client_address_key(text: str) -> tuple[Literal[4, 6], int] | None:
    """An address reported by a machine as (IP version, integer), or None if unparseable.

    ``socket.inet_pton`` is several times faster than ``ipaddress`` and, like it, rejects
    IPv4 octets with leading zeros; ``ipaddress`` is the fallback for scoped IPv6
    (``fe80::1%eth0``). IPv4-mapped IPv6 addresses (``::ffff:10.1.2.3``, as dual-stack
    sockets report them) count as the IPv4 address.
    """
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, TypeError):
        pass
    value: int | None
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError, TypeError):
        value = _slow_ipv6(text)
    if value is None:
        return None
    if value & _IPV4_MAPPED_MASK == _IPV4_MAPPED_PREFIX:
        return 4, value & 0xFFFFFFFF
    return 6, value


def _slow_ipv6(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return int(address) if address.version == 6 else None


# ----------------------------------------------------------------------------- index

_NO_MATCHES: tuple[BoundaryMatch, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class BoundarySet:
    """The boundaries containing one address segment, or matching one AD site name.

    Interned by the index: every address of a segment, and every machine in the same AD
    site, gets the same object, and ``key`` is unique within the index, so callers can
    memoise per-placement work on it.
    """

    key: int
    matches: tuple[BoundaryMatch, ...]  # sorted by boundary id


_NO_SETS: tuple[BoundarySet, ...] = ()


class _Interner:
    """Hands out one BoundarySet per distinct set of boundaries, numbered in order."""

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[tuple[int, ...], BoundarySet] = {}

    def get(self, matches: Iterable[BoundaryMatch]) -> BoundarySet:
        ordered = sorted(matches, key=_boundary_id)
        ids = tuple(m.boundary.id for m in ordered)
        found = self._sets.get(ids)
        if found is None:
            found = self._sets[ids] = BoundarySet(len(self._sets) + 1, tuple(ordered))
        return found


class _AddressLine:
    """One IP version's address line cut into elementary segments.

    Every interval endpoint starts a new segment, so every address of a segment lies in
    exactly the same set of boundaries; that set is precomputed. A lookup is one bisect.
    """

    __slots__ = ("_sets", "_starts")

    def __init__(
        self, intervals: Sequence[tuple[int, int, BoundaryMatch]], interner: _Interner
    ) -> None:
        openings: dict[int, list[BoundaryMatch]] = {}
        closings: dict[int, list[BoundaryMatch]] = {}
        for first, last, match in intervals:
            openings.setdefault(first, []).append(match)
            closings.setdefault(last + 1, []).append(match)
        active: dict[int, BoundaryMatch] = {}
        self._starts: list[int] = []
        self._sets: list[BoundarySet | None] = []
        for cut in sorted(openings.keys() | closings.keys()):
            for match in closings.get(cut, ()):
                del active[match.boundary.id]
            for match in openings.get(cut, ()):
                active[match.boundary.id] = match
            self._starts.append(cut)
            # Nested boundaries repeat the same set often: the interner shares it.
            self._sets.append(interner.get(active.values()) if active else None)

    def containing(self, address: int) -> BoundarySet | None:
        position = bisect_right(self._starts, address) - 1
        return self._sets[position] if position >= 0 else None

    @property
    def segment_count(self) -> int:
        return len(self._starts)


class BoundaryIndex:
    """Which boundaries contain a machine: by IP address (subnet, range) or AD site.

    Built once from all boundaries; :meth:`match` costs one bisect per address and one
    dictionary lookup for the AD site, independent of the number of boundaries.
    Overlapping and nested boundaries are all reported. A boundary whose value does not
    parse is left out and listed in :attr:`rejected` (the site logs it) rather than
    taking the whole index down.
    """

    __slots__ = ("_ad_sites", "_by_id", "_ipv4", "_ipv6", "_merged", "rejected")

    def __init__(self, boundaries: Iterable[Boundary]) -> None:
        ipv4: list[tuple[int, int, BoundaryMatch]] = []
        ipv6: list[tuple[int, int, BoundaryMatch]] = []
        ad_sites: dict[str, list[BoundaryMatch]] = {}
        rejected: list[tuple[Boundary, str]] = []
        self._by_id: dict[int, Boundary] = {}
        for boundary in boundaries:
            if boundary.id in self._by_id:
                raise ValueError(f"boundary id {boundary.id} appears twice")
            try:
                parsed = _parsed_once(boundary.type, boundary.value)
            except (ValueError, TypeError) as error:
                rejected.append((boundary, str(error)))
                continue
            self._by_id[boundary.id] = boundary
            match = BoundaryMatch(boundary, _MATCHED_BY[boundary.type])
            if isinstance(parsed, str):
                ad_sites.setdefault(parsed.casefold(), []).append(match)
            else:
                line = ipv4 if parsed.version == 4 else ipv6
                line.append((parsed.first, parsed.last, match))
        interner = _Interner()
        self._ipv4 = _AddressLine(ipv4, interner)
        self._ipv6 = _AddressLine(ipv6, interner)
        self._ad_sites = {site: interner.get(matches) for site, matches in ad_sites.items()}
        self._merged: dict[tuple[int, ...], tuple[BoundaryMatch, ...]] = {}
        self.rejected: tuple[tuple[Boundary, str], ...] = tuple(rejected)

    def boundary_sets(
        self, ip_addresses: Sequence[str], ad_site: str | None
    ) -> tuple[BoundarySet, ...]:
        """The interned sets containing each address and matching the AD site, sorted by
        key, each once. Unparseable addresses are ignored."""
        found: list[BoundarySet] = []
        for text in ip_addresses:
            try:  # the common case, inline: a well-formed IPv4 address
                number = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
                boundary_set = self._ipv4.containing(number)
            except (OSError, ValueError, TypeError):
                boundary_set = self._containing(text)
            if boundary_set is not None and boundary_set not in found:
                found.append(boundary_set)
        if ad_site:
            site_set = self._ad_sites.get(ad_site.strip().casefold())
            if site_set is not None and site_set not in found:
                found.append(site_set)
        if len(found) > 1:
            found.sort(key=_set_key)
        return tuple(found) if found else _NO_SETS

    def _containing(self, text: str) -> BoundarySet | None:
        address = client_address_key(text)
        if address is None:
            return None
        line = self._ipv4 if address[0] == 4 else self._ipv6
        return line.containing(address[1])

    def merge(self, sets: Sequence[BoundarySet]) -> tuple[BoundaryMatch, ...]:
        """The union of boundary sets, sorted by boundary id, each boundary once."""
        if not sets:
            return _NO_MATCHES
        if len(sets) == 1:
            return sets[0].matches
        key = tuple(s.key for s in sets)
        merged = self._merged.get(key)
        if merged is None:
            by_id = {match.boundary.id: match for s in sets for match in s.matches}
            merged = tuple(by_id[i] for i in sorted(by_id))
            if len(self._merged) >= _MERGE_MEMO_LIMIT:
                self._merged.clear()  # crude bound; refilled by the next requests
            self._merged[key] = merged
        return merged

    def match(self, ip_addresses: Sequence[str], ad_site: str | None) -> tuple[BoundaryMatch, ...]:
        """The boundaries containing any of the addresses or matching the AD site.

        Sorted by boundary id, each boundary once. Unparseable addresses are ignored.
        """
        return self.merge(self.boundary_sets(ip_addresses, ad_site))

    def get(self, boundary_id: int) -> Boundary | None:
        return self._by_id.get(boundary_id)

    @property
    def boundaries(self) -> tuple[Boundary, ...]:
        """The indexed (valid) boundaries."""
        return tuple(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def segment_count(self) -> int:
        """Elementary address segments (a size figure for benchmarks)."""
        return self._ipv4.segment_count + self._ipv6.segment_count


_MERGE_MEMO_LIMIT = 1 << 16


def _boundary_id(match: BoundaryMatch) -> int:
    return match.boundary.id


def _set_key(boundary_set: BoundarySet) -> int:
    return boundary_set.key

"""Boundary value parsing and the boundary index (checked against a brute-force scan)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerdp.domain.boundaries import (
    AddressSpan,
    Boundary,
    BoundaryIndex,
    BoundaryType,
    canonical_boundary_value,
    client_address_key,
    parse_boundary_value,
)

# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("ip_subnet", "10.1.0.0/16", AddressSpan(0x0A010000, 0x0A01FFFF, 4)),
        ("ip_subnet", " 10.1.0.0/16 ", AddressSpan(0x0A010000, 0x0A01FFFF, 4)),
        ("ip_subnet", "10.1.0.5/24", AddressSpan(0x0A010000, 0x0A0100FF, 4)),  # host bits ok
        ("ip_subnet", "10.1.0.0/255.255.0.0", AddressSpan(0x0A010000, 0x0A01FFFF, 4)),
        ("ip_subnet", "10.1.2.3/32", AddressSpan(0x0A010203, 0x0A010203, 4)),
        ("ip_subnet", "0.0.0.0/0", AddressSpan(0, 2**32 - 1, 4)),
        ("ip_subnet", "fd00::/64", AddressSpan(0xFD00 << 112, (0xFD00 << 112) + 2**64 - 1, 6)),
        ("ip_range", "10.1.0.1-10.1.0.200", AddressSpan(0x0A010001, 0x0A0100C8, 4)),
        ("ip_range", "10.1.0.1 - 10.1.0.1", AddressSpan(0x0A010001, 0x0A010001, 4)),
        (
            "ip_range",
            "fd00::1-fd00::ff",
            AddressSpan((0xFD00 << 112) + 1, (0xFD00 << 112) + 255, 6),
        ),
        ("ad_site", "BRANCH-01", "BRANCH-01"),
        ("ad_site", "  Head Office ", "Head Office"),
    ],
)
def test_valid_values_parse(type_: BoundaryType, value: str, expected: AddressSpan | str) -> None:
    assert parse_boundary_value(type_, value) == expected


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("ip_subnet", "10.1.0.300/24", "'10.1.0.300/24' is not a valid IPv4 or IPv6 subnet"),
        ("ip_subnet", "10.1.0.0/33", "'10.1.0.0/33' is not a valid IPv4 or IPv6 subnet"),
        ("ip_subnet", "fd00::/129", "'fd00::/129' is not a valid IPv4 or IPv6 subnet"),
        ("ip_subnet", "branch/24", "'branch/24' is not a valid IPv4 or IPv6 subnet"),
        ("ip_subnet", "10.1.0.0", "'10.1.0.0' has no prefix length"),
        ("ip_subnet", "  ", "subnet must not be empty"),
        ("ip_range", "10.0.0.9-10.0.0.1", "first address 10.0.0.9 is after last address 10.0.0.1"),
        ("ip_range", "10.0.0.1-fd00::1", "mixes IPv4 and IPv6"),
        ("ip_range", "10.0.0.1", "'10.0.0.1' is not an address range: write FIRST-LAST"),
        ("ip_range", "10.0.0.1-10.0.0.5-10.0.0.9", "is not an address range"),
        ("ip_range", "10.0.0.1-", "is not an address range"),
        ("ip_range", "10.0.0.1-10.0.0.300", "'10.0.0.300' in address range"),
        ("ip_range", "10.0.0.1-10.0.0.300", "is not a valid IPv4 or IPv6 address"),
        ("ip_range", "10.0.0.0/24-10.0.1.0/24", "is not a valid IPv4 or IPv6 address"),
        ("ad_site", "", "AD site name must not be empty"),
        ("ad_site", "   ", "AD site name must not be empty"),
        ("subnet", "10.0.0.0/8", "unknown boundary type 'subnet'"),
    ],
)
def test_invalid_values_say_what_is_wrong(type_: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_boundary_value(type_, value)
    assert message in str(caught.value)


def test_canonical_values() -> None:
    assert canonical_boundary_value("ip_subnet", "10.1.0.5/24") == "10.1.0.0/24"
    assert canonical_boundary_value("ip_subnet", "FD00:0::/64") == "fd00::/64"
    assert canonical_boundary_value("ip_range", "10.0.0.1 - 10.0.0.9") == "10.0.0.1-10.0.0.9"
    assert canonical_boundary_value("ad_site", " Site ") == "Site"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", (4, 0x0A010203)),
        ("::ffff:10.1.2.3", (4, 0x0A010203)),  # IPv4-mapped counts as IPv4
        ("fd00::1", (6, (0xFD00 << 112) + 1)),
        ("fe80::1%eth0", (6, (0xFE80 << 112) + 1)),
        ("010.1.2.3", None),  # leading zeros are ambiguous: rejected like ipaddress does
        ("10.1.2.300", None),
        ("", None),
        ("not an address", None),
        ("10.1.2.3\x00", None),
    ],
)
def test_client_address_key(text: str, expected: tuple[int, int] | None) -> None:
    assert client_address_key(text) == expected


# -------------------------------------------------------------------------------- index


def _b(id_: int, type_: BoundaryType, value: str, connection: str = "fast") -> Boundary:
    return Boundary(id_, f"b{id_}", type_, value, "fast" if connection == "fast" else "slow")


def _ids(index: BoundaryIndex, addresses: tuple[str, ...], site: str | None = None) -> list[int]:
    return [m.boundary.id for m in index.match(addresses, site)]


def test_nested_and_overlapping_boundaries_all_match() -> None:
    index = BoundaryIndex(
        [
            _b(1, "ip_subnet", "10.0.0.0/8"),
            _b(2, "ip_subnet", "10.1.0.0/16"),
            _b(3, "ip_subnet", "10.1.1.0/24"),
            _b(4, "ip_range", "10.1.1.100-10.1.2.50"),
            _b(5, "ip_range", "10.1.1.100-10.1.1.100"),
            _b(6, "ad_site", "Branch-01"),
        ]
    )
    assert _ids(index, ("10.1.1.100",)) == [1, 2, 3, 4, 5]
    assert _ids(index, ("10.1.1.99",)) == [1, 2, 3]
    assert _ids(index, ("10.1.1.101",)) == [1, 2, 3, 4]
    assert _ids(index, ("10.1.2.50",)) == [1, 2, 4]
    assert _ids(index, ("10.1.2.51",)) == [1, 2]
    assert _ids(index, ("10.255.255.255",)) == [1]
    assert _ids(index, ("11.0.0.0",)) == []
    assert _ids(index, ("9.255.255.255",)) == []


def test_matches_say_how_they_matched_and_merge_across_addresses() -> None:
    index = BoundaryIndex(
        [
            _b(1, "ip_subnet", "10.1.1.0/24"),
            _b(2, "ip_range", "10.9.0.1-10.9.0.9"),
            _b(3, "ad_site", "BRANCH-01"),
            _b(4, "ip_subnet", "fd00:1::/64"),
        ]
    )
    matches = index.match(("fd00:1::7", "10.9.0.5", "10.1.1.1", "10.1.1.2"), "branch-01")
    assert [(m.boundary.id, m.by) for m in matches] == [
        (1, "subnet"),
        (2, "range"),
        (3, "ad_site"),
        (4, "subnet"),
    ]


def test_ad_site_matching_is_case_insensitive_and_trimmed() -> None:
    index = BoundaryIndex([_b(1, "ad_site", "Branch-01"), _b(2, "ad_site", "BRANCH-01")])
    assert _ids(index, (), " branch-01 ") == [1, 2]
    assert _ids(index, (), "BRANCH-02") == []
    assert _ids(index, (), "") == []
    assert _ids(index, (), None) == []


def test_unparseable_client_addresses_are_ignored() -> None:
    index = BoundaryIndex([_b(1, "ip_subnet", "10.0.0.0/8")])
    assert _ids(index, ("garbage", "", "10.0.0.999", "10.2.3.4")) == [1]
    assert _ids(index, ("garbage",)) == []


def test_ipv4_and_ipv6_lines_are_separate() -> None:
    # ::a01:203 has the same integer value as 10.1.2.3 but is not in an IPv4 subnet.
    index = BoundaryIndex([_b(1, "ip_subnet", "10.0.0.0/8"), _b(2, "ip_subnet", "::/96")])
    assert _ids(index, ("10.1.2.3",)) == [1]
    assert _ids(index, ("::a01:203",)) == [2]
    assert _ids(index, ("::ffff:10.1.2.3",)) == [1]


def test_whole_address_space_edges() -> None:
    index = BoundaryIndex(
        [_b(1, "ip_subnet", "0.0.0.0/0"), _b(2, "ip_range", "255.255.255.255-255.255.255.255")]
    )
    assert _ids(index, ("0.0.0.0",)) == [1]
    assert _ids(index, ("255.255.255.255",)) == [1, 2]


def test_invalid_boundaries_are_rejected_not_fatal() -> None:
    good = _b(1, "ip_subnet", "10.0.0.0/8")
    bad = _b(2, "ip_range", "10.0.0.9-10.0.0.1")
    index = BoundaryIndex([good, bad])
    assert len(index) == 1
    assert index.get(2) is None
    assert index.rejected == ((bad, "first address 10.0.0.9 is after last address 10.0.0.1"),)
    assert _ids(index, ("10.0.0.5",)) == [1]


def test_duplicate_boundary_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="boundary id 1 appears twice"):
        BoundaryIndex([_b(1, "ad_site", "A"), _b(1, "ad_site", "B")])


def test_empty_index() -> None:
    index = BoundaryIndex([])
    assert index.match(("10.0.0.1", "fd00::1"), "SITE") == ()


# ------------------------------------------------------------- index vs brute force


@st.composite
def _subnet(draw: st.DrawFn) -> str:
    offset = draw(st.integers(0, 2**13 - 1))
    if draw(st.booleans()):
        v4 = ipaddress.IPv4Address(0x0A000000 + offset)
        return str(ipaddress.ip_network(f"{v4}/{draw(st.integers(20, 32))}", strict=False))
    v6 = ipaddress.IPv6Address((0xFD00 << 112) + offset)
    return str(ipaddress.ip_network(f"{v6}/{draw(st.integers(116, 128))}", strict=False))


@st.composite
def _range(draw: st.DrawFn) -> str:
    low = draw(st.integers(0, 2**13 - 1))
    high = draw(st.integers(low, 2**13))
    if draw(st.booleans()):
        v4 = ipaddress.IPv4Address
        return f"{v4(0x0A000000 + low)}-{v4(0x0A000000 + high)}"
    v6 = ipaddress.IPv6Address
    return f"{v6((0xFD00 << 112) + low)}-{v6((0xFD00 << 112) + high)}"


_SITES = st.sampled_from(["alpha", "Alpha", "BETA", "gamma"])


@st.composite
def _boundaries(draw: st.DrawFn) -> list[Boundary]:
    count = draw(st.integers(0, 25))
    found = []
    for id_ in range(1, count + 1):
        type_: BoundaryType = draw(st.sampled_from(["ip_subnet", "ip_range", "ad_site"]))
        value = {"ip_subnet": _subnet(), "ip_range": _range(), "ad_site": _SITES}[type_]
        found.append(_b(id_, type_, draw(value), draw(st.sampled_from(["fast", "slow"]))))
    return found


@st.composite
def _client_address(draw: st.DrawFn) -> str:
    offset = draw(st.integers(0, 2**13 + 5))
    if draw(st.booleans()):
        return str(ipaddress.IPv4Address(0x0A000000 + offset))
    return str(ipaddress.IPv6Address((0xFD00 << 112) + offset))


def _brute_force(boundaries: list[Boundary], addresses: list[str], site: str | None) -> list[int]:
    parsed = [ipaddress.ip_address(a) for a in addresses]
    found = []
    for boundary in boundaries:
        if boundary.type == "ad_site":
            hit = site is not None and boundary.value.casefold() == site.casefold()
        elif boundary.type == "ip_subnet":
            network = ipaddress.ip_network(boundary.value)
            hit = any(a.version == network.version and a in network for a in parsed)
        else:
            first_text, last_text = boundary.value.split("-")
            first, last = (
                int(ipaddress.ip_address(first_text)),
                int(ipaddress.ip_address(last_text)),
            )
            version = ipaddress.ip_address(first_text).version
            hit = any(a.version == version and first <= int(a) <= last for a in parsed)
        if hit:
            found.append(boundary.id)
    return found


@settings(max_examples=200, deadline=None)
@given(
    boundaries=_boundaries(),
    addresses=st.lists(_client_address(), max_size=3),
    site=st.none() | _SITES,
)
def test_index_agrees_with_brute_force(
    boundaries: list[Boundary], addresses: list[str], site: str | None
) -> None:
    index = BoundaryIndex(boundaries)
    assert _ids(index, tuple(addresses), site) == _brute_force(boundaries, addresses, site)


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=40), type_=st.sampled_from(["ip_subnet", "ip_range", "ad_site"]))
def test_parsing_never_fails_other_than_value_error(value: str, type_: BoundaryType) -> None:
    try:
        parse_boundary_value(type_, value)
    except ValueError as error:
        assert str(error)

"""Addresses and subnets as machines report them and administrators enter them: one form
each, anything else refused with the form to write."""

from __future__ import annotations

import pytest

from peerdp.domain.boundaries import (
    Boundary,
    BoundaryIndex,
    check_boundary_input,
    check_machine_address,
    placement,
)


@pytest.mark.parametrize(
    "address", ["10.1.1.5", "0.0.0.0", "fd00::1", "2001:DB8::1", "::ffff:10.1.2.3", "::1"]
)
def test_addresses_are_taken(address: str) -> None:
    assert check_machine_address(address) == address


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("999.9.9.9", "not an IPv4 or IPv6 address"),
        ("abc", "not an IPv4 or IPv6 address"),
        ("", "not an IPv4 or IPv6 address"),
        ("10.1.1", "not an IPv4 or IPv6 address"),
        ("010.1.1.1", "not an IPv4 or IPv6 address"),
        ("10.0.0.0/8", "is a subnet, not an address"),
        ("fd00::/64", "is a subnet, not an address"),
        ("fe80::1%eth0", "without it, fe80::1"),
        (" 10.1.1.1", "spaces"),
        ("10.1.1.1\n", "spaces"),
    ],
)
def test_bad_addresses_are_refused_saying_why(address: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_machine_address(address)


@pytest.mark.parametrize(
    ("value", "write"),
    [
        ("10.1.1.5/24", "write 10.1.1.0/24"),
        ("fd00::1/64", "write fd00::/64"),
        ("10.1.0.5/255.255.0.0", "write 10.1.0.0/16"),
        ("fe80::%eth0/64", "write fe80::/64"),
    ],
)
def test_subnets_not_in_their_one_form_are_refused_naming_it(value: str, write: str) -> None:
    with pytest.raises(ValueError, match=write):
        check_boundary_input("ip_subnet", value)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("ip_subnet", "10.1.1.0/24"),
        ("ip_subnet", "fd00::/64"),
        ("ip_subnet", "10.1.1.5/32"),
        ("ip_range", "10.1.0.1-10.1.0.200"),
        ("ad_site", "BRANCH-01"),
    ],
)
def test_normalised_values_are_taken(type_: str, value: str) -> None:
    assert check_boundary_input(type_, value) == value


def test_an_ad_site_name_must_show_what_it_is() -> None:
    with pytest.raises(ValueError, match=r"AD site name .*U\+202E"):
        check_boundary_input("ad_site", "BRANCH\u202e-01")


def test_a_stored_subnet_with_host_bits_still_matches() -> None:
    # Refused on input from now on, but rows stored before keep working.
    index = BoundaryIndex([Boundary(1, "old", "ip_subnet", "10.1.1.5/24", "fast")])
    assert [m.boundary.id for m in index.match(["10.1.1.77"], None)] == [1]
    assert index.rejected == ()


# -- placement: what puts a client in boundaries -----------------------------------


def test_a_client_is_placed_by_what_it_reports_unless_pinned() -> None:
    reported = ("10.1.1.20",)
    assert placement(reported, "BRANCH", "203.0.113.7", "reported") == (reported, "BRANCH")


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("203.0.113.7", ("203.0.113.7",)),
        ("::ffff:10.1.1.20", ("::ffff:10.1.1.20",)),  # boundaries match it as 10.1.1.20
        ("fe80::1%eth0", ("fe80::1",)),  # the scope names the site's own interface
        (None, ()),  # no connection seen: placed nowhere, not by its claims
        ("testclient", ()),  # not an address (an in-process or Unix-socket caller)
    ],
)
def test_a_pinned_client_is_placed_by_its_peer_address_alone(
    peer: str | None, expected: tuple[str, ...]
) -> None:
    # Its reported addresses and AD site are both claims: neither counts once pinned.
    assert placement(("10.1.1.20",), "BRANCH", peer, "peer") == (expected, None)

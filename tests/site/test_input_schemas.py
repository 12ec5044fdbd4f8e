"""Request bodies refuse what is not what it claims (in-process, on the schemas): bad
addresses, and names or machine names with invisible characters, each naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from peerdp.site.admin.schemas import (
    AdvertisementIn,
    BoundaryIn,
    CollectionIn,
    DistributionPointIn,
    DistributionPointPatch,
    MembersIn,
    PackageIn,
    PackagePatch,
    ProgramIn,
)
from peerdp.site.errors import describe_validation
from peerdp.site.mp.schemas import LocationIn, RegisterIn

RLO = "\u202e"
ZWSP = "\u200b"
TOKEN = "pde_" + "x" * 20


def refusal(model: type[BaseModel], body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return describe_validation(caught.value.errors())


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (PackageIn, {"name": f"Acme{RLO}exe.txt"}, "name"),
        (PackagePatch, {"name": f"Acme{ZWSP}"}, "name"),
        (ProgramIn, {"name": f"Install{RLO}", "command_line": "setup.cmd"}, "name"),
        (CollectionIn, {"name": f"All{ZWSP}PCs"}, "name"),
        (CollectionIn, {"name": "All", "member_names": ["PC1", f"PC{RLO}2"]}, "member_names.1"),
        (MembersIn, {"member_names": [f"PC{ZWSP}"]}, "member_names.0"),
        (BoundaryIn, {"name": f"HQ{RLO}", "type": "ad_site", "value": "HQ"}, "name"),
        (DistributionPointIn, {"name": "DP\u2028", "kind": "branch"}, "name"),
        (
            AdvertisementIn,
            {
                "name": "adv",
                "package_id": "PS100001",
                "program_name": f"Install{ZWSP}",
                "collection_id": 1,
            },
            "program_name",
        ),
        (RegisterIn, {"token": TOKEN, "name": f"PC{RLO}1"}, "name"),
    ],
)
def test_invisible_characters_in_names_are_refused(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    detail = refusal(model, body)
    assert detail.startswith(f"{field}:"), detail
    assert "invisible" in detail and "U+" in detail


@pytest.mark.parametrize("bad", ["999.9.9.9", "abc", "10.0.0.0/8", "fe80::1%eth0"])
@pytest.mark.parametrize(
    ("model", "body"),
    [
        (RegisterIn, {"token": TOKEN, "name": "PC1"}),
        (
            LocationIn,
            {"advertisement_id": 1, "package_id": "PS100001", "source_version": 1},
        ),
        (DistributionPointIn, {"name": "DP1", "kind": "branch"}),
        (DistributionPointPatch, {}),
    ],
)
def test_bad_addresses_are_refused_naming_the_field(
    model: type[BaseModel], body: dict[str, Any], bad: str
) -> None:
    detail = refusal(model, {**body, "ip_addresses": ["10.1.1.5", bad]})
    assert detail.startswith("ip_addresses.1:"), detail
    assert bad in detail


def test_good_addresses_and_names_pass() -> None:
    body = RegisterIn.model_validate(
        {"token": TOKEN, "name": "Café-PC", "ip_addresses": ["10.1.1.5", "fd00::5"]}
    )
    assert body.ip_addresses == ["10.1.1.5", "fd00::5"]
    assert PackageIn.model_validate({"name": "Acme Viewer (x64) 2.1"}).name


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        (
            AdvertisementIn,
            {"name": "a", "package_id": "PS100001", "program_name": "I", "collection_id": "x"},
            "collection_id: must be a whole number (got 'x')",
        ),
        (
            BoundaryIn,
            {"name": "b", "type": "ip_subnet", "value": "10.0.0.0/8", "connection": "medium"},
            "connection: must be 'fast' or 'slow' (got 'medium')",
        ),
        (BoundaryIn, {"type": "ad_site", "value": "HQ"}, "name: is required"),
        (PackageIn, {"name": "p", "on_demand": "maybe"}, "on_demand: must be true or false"),
        (CollectionIn, {"name": f"All{ZWSP}"}, "name: name must not contain invisible"),
    ],
)
def test_refusals_say_what_was_wrong_with_which_field_in_words(
    model: type[BaseModel], body: dict[str, Any], expected: str
) -> None:
    detail = refusal(model, body)
    assert detail.startswith(expected), detail
    assert "Input should" not in detail and "Value error" not in detail, detail

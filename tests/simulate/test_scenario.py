"""Scenario files: read with tomllib, every mistake refused with the field that is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peerdp.simulate import scenario, world
from peerdp.simulate.scenario import ScenarioError
from tests.simulate.support import seed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as caught:
        world.build(scenario.parse(data))
    return str(caught.value)


def test_the_examples_are_valid() -> None:
    for path in sorted(EXAMPLES.glob("*.toml")):
        built = world.build(scenario.load(path))
        assert built.client_count > 0, path


def test_a_generated_topology() -> None:
    data = seed()
    data["generate"] = {
        "branches": 300,
        "clients_per_branch": 20,
        "address_plan": "10.0.0.0/8",
        "wan": {"mbps": 10},
    }
    built = world.build(scenario.parse(data))
    assert len(built.places) == 1 + 1 + 300
    assert built.client_count == 4 + 300 * 20
    # No generated subnet overlaps the head office's or BR01's.
    nets = [p.network for p in built.places]
    assert len({str(n) for n in nets}) == len(nets)
    assert str(built.places[2].network) == "10.0.1.0/24"  # 10.0.0.0/24 is the head office's
    assert [dp.rule.name for dp in built.dps][-1] == "BR300-DP"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hq": None}, "hq: Input should be a valid dictionary"),
        ({"hq__subnet": "10.0.0.0"}, "hq.subnet: '10.0.0.0' has no prefix length"),
        ({"hq__lan_mbps": 0}, "hq.lan_mbps: Input should be greater than 0"),
        ({"hq__clients": 300}, "hq.clients: 300 clients do not fit in 10.0.0.0/24"),
        ({"branches__wna": {}}, "branches[0].wna: Extra inputs are not permitted"),
        ({"packages__size_mib": -1}, "packages[0].size_mib: Input should be greater than 0"),
        ({"packages__staged_on": ["HQ-DP02"]}, "packages[0].staged_on[0]: no distribution point"),
        ({"advertisements__package": "Nope"}, "advertisements[0].package: no package named 'Nope'"),
        ({"advertisements__on_slow": "maybe"}, "advertisements[0].on_slow: Input should be"),
        ({"distribution_points__location": "BR09"}, "distribution_points[0].location: no location"),
        (
            {"distribution_points__protects": ["X"]},
            "distribution_points[0].protects[0]: no boundary",
        ),
        ({"branches__subnet": "10.0.0.128/25"}, "branches[0].subnet: 10.0.0.128/25 overlaps"),
        (
            {"clients": {"policy": "sms2003"}},
            "clients.policy: Input should be 'peerdp' or 'sccm2007'",
        ),
        (
            {"clients": {"poll_interval_s": 600, "randomise_s": 900}},
            "clients.randomise_s: 900.0 is more than poll_interval_s (600.0)",
        ),
        (
            {"events": [{"type": "dp_down", "dp": "BR01-DP", "from_s": 50, "until_s": 10}]},
            "events[0].until_s: 10.0 is not after from_s (50.0)",
        ),
        (
            {"events": [{"type": "dp_down", "from_s": 0, "until_s": 10}]},
            "events[0]: give exactly one of dp and branch_dp_fraction",
        ),
        (
            {"events": [{"type": "link_cut", "location": "HQ", "from_s": 0, "until_s": 10}]},
            "events[0].location: no branch named 'HQ'",
        ),
        ({"events": [{"type": "flood", "at_s": 1}]}, "events[0]: Input tag 'flood'"),
        ({"packages": []}, "packages: List should have at least 1 item"),
    ],
)
def test_a_bad_field_is_named(changes: dict[str, Any], message: str) -> None:
    assert message in refused(seed(**changes))


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        scenario.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[hq\nname = 1\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        scenario.load(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        scenario.load(binary)

"""`peerdp simulate`: the summary, the JSON result, the plots, the comparison, bad files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from peerdp.cli.main import app

SEED = str(Path(__file__).resolve().parents[2] / "examples" / "seed.toml")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["simulate", *args], env={"COLUMNS": "120"})
    return result.exit_code, result.stdout, result.stderr


def test_summary_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    code, stdout, _ = invoke(SEED, "--json", str(out), "--plots", str(tmp_path / "plots"))
    assert code == 0, stdout
    assert "on-demand provisionings" in stdout and "seed · policy peerdp" in stdout
    result = json.loads(out.read_text())
    assert result["succeeded"] == result["targeted"] == 4
    assert result["wan_bytes"] == result["wan_floor_bytes"] == 24 << 20
    assert len(result["curve"]) == 4
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["branch-completion.png", "deployment.png", "mp-load.png", "wan-bytes.png"]
    for name in plots:
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG")


def test_compare_sccm2007(tmp_path: Path) -> None:
    out = tmp_path / "both.json"
    code, stdout, _ = invoke(SEED, "--compare", "sccm2007", "--json", str(out))
    assert code == 0
    assert "policy peerdp" in stdout and "policy sccm2007" in stdout
    peerdp, sccm = json.loads(out.read_text())
    assert (peerdp["policy_model"], sccm["policy_model"]) == ("peerdp", "sccm2007")
    assert sccm["time_to_succeeded_s"]["100%"] > peerdp["time_to_succeeded_s"]["100%"]


def test_bad_input(tmp_path: Path) -> None:
    code, _, stderr = invoke(str(tmp_path / "none.toml"))
    assert code == 1 and stderr.startswith("Error: ") and "cannot read" in stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[hq]\nname = "HQ"\nsubnet = "10.0.0.0/33"\n')
    code, _, stderr = invoke(str(bad))
    assert code == 1 and "hq.subnet:" in stderr
    code, _, stderr = invoke(SEED, "--compare", "sms2003")
    assert code == 1 and "--compare: expected peerdp or sccm2007" in stderr
    assert not list(tmp_path.glob("*.json"))

"""What the demo reads from its processes: client output, status details, metrics."""

from __future__ import annotations

from pathlib import Path

from peerdp.demo.readings import bytes_by_source, bytes_under, first_outcome, metric


def test_a_clients_first_outcome() -> None:
    ran = '[{"result": "succeeded", "exit_code": 0}, {"result": "later"}]'
    assert first_outcome(ran, "") == {"result": "succeeded", "exit_code": 0}
    assert first_outcome("[]", "") == {"result": "nothing to run"}
    crashed = first_outcome("", "Traceback ...\nRuntimeError: boom\n")
    assert crashed["result"] == "failed" and crashed["detail"].endswith("boom")


def test_bytes_by_source() -> None:
    detail = "installed 3 files (from BR01-DP:25165824, HQ-DP01:512)"
    assert bytes_by_source(detail) == {"BR01-DP": 25165824, "HQ-DP01": 512}
    assert bytes_by_source("no transfer") == {}


def test_bytes_under(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x" * 10)
    (tmp_path / "g").write_bytes(b"y" * 5)
    assert bytes_under(tmp_path) == 15


def test_an_unlabelled_metric() -> None:
    text = (
        "# HELP peerdp_branch_pulled_bytes_total Bytes pulled.\n"
        "# TYPE peerdp_branch_pulled_bytes_total counter\n"
        "peerdp_branch_pulled_bytes_total 2.5165824e+07\n"
        "peerdp_branch_pulled_bytes_created 1.7e+09\n"
    )
    assert metric(text, "peerdp_branch_pulled_bytes_total") == 25165824.0
    assert metric(text, "peerdp_absent_total") == 0.0

"""The client agent's handling of programs: success codes, retries, failed, reruns.

In process, with the content already in the client's cache and a recording MP; the
programs are real shell command lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peerdp.agents.client import (
    ALREADY_DONE,
    FAILED,
    SUCCEEDED,
    WAITING,
    Advertisement,
    ClientAgent,
    ClientOptions,
)
from peerdp.agents.client_cache import PackageCache
from peerdp.domain.programs import RetryPolicy
from peerdp.domain.timestamps import parse_rfc3339
from peerdp.machine.mp_client import Identity, MachineFacts
from tests.agents.test_client_units import advertisement, cache_with
from tests.machine.support import RecordingMP, manifest_of

FILES = {"setup.sh": b"echo hi\n"}


def _agent(tmp_path: Path, mp: RecordingMP, **retry: Any) -> ClientAgent:
    identity = Identity("m", "c", "k", "PS1", "client", "pc1", "http://127.0.0.1:9")
    options = ClientOptions(retry=RetryPolicy(**retry))
    return ClientAgent(identity, mp, MachineFacts("pc1", (), None), tmp_path, options)  # type: ignore[arg-type]


def _cached_advertisement(tmp_path: Path, command_line: str, **fields: Any) -> Advertisement:
    manifest = manifest_of("PS100001", FILES)
    cache_with(PackageCache(tmp_path), manifest, FILES)
    return advertisement(manifest_digest=manifest.digest(), command_line=command_line, **fields)


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _sent(mp: RecordingMP, *types: str) -> list[dict[str, Any]]:
    return [m for m in mp.messages if m["type"] in types]


def test_a_failing_program_runs_its_attempts_then_is_failed_until_rerun(tmp_path: Path) -> None:
    mp = RecordingMP()
    counter = tmp_path / "runs"
    adv = _cached_advertisement(tmp_path, f"echo run >> '{counter}'; exit 1", key="v1")
    agent = _agent(tmp_path, mp, interval_s=60, program_attempts=3)

    before = datetime.now(UTC)
    first = agent.evaluate(adv)
    assert (first.result, first.exit_code, _runs(counter)) == (FAILED, 1, 1)
    [failed] = _sent(mp, "program_failed")
    assert (failed["state"], failed["attempt"], failed["exit_code"]) == ("retrying", 1, 1)
    next_at = parse_rfc3339(failed["next_attempt_at"])
    assert before + timedelta(seconds=59) <= next_at <= datetime.now(UTC) + timedelta(seconds=61)
    assert "attempt 1 of 3" in failed["detail"]

    # The service waits for the next attempt's time; --once tries now.
    waiting = agent.evaluate(adv, wait_for_retry=True)
    assert (waiting.result, _runs(counter)) == (WAITING, 1)
    agent.evaluate(adv)
    last = agent.evaluate(adv)
    assert _runs(counter) == 3
    assert last.result == FAILED and last.detail == "failed after 3 of 3 runs: exit code 1"
    attempts = [
        (m["attempt"], m["state"], m["next_attempt_at"]) for m in _sent(mp, "program_failed")
    ]
    assert attempts[2] == (3, "failed", None)
    assert [a for a, _, _ in attempts] == [1, 2, 3]
    [given_up] = _sent(mp, "advertisement_failed")
    assert given_up["state"] == "failed" and given_up["exit_code"] == 1
    assert "failed after 3 of 3 runs: exit code 1" in given_up["detail"]
    assert "peerdp advertisement rerun" in given_up["detail"]

    # Failed stays failed, also in a restarted agent, and is not reported again.
    sent = len(mp.messages)
    for again in (agent, _agent(tmp_path, mp, interval_s=60, program_attempts=3)):
        outcome = again.evaluate(adv)
        assert outcome.result == FAILED and "failed after 3 of 3 runs" in outcome.detail
    assert (_runs(counter), len(mp.messages)) == (3, sent)

    # A rerun (a new policy entry) starts afresh.
    rerun = agent.evaluate(_cached_advertisement(tmp_path, adv.command_line, rerun=7, key="v2"))
    assert (rerun.result, _runs(counter)) == (FAILED, 4)
    assert _sent(mp, "program_failed")[-1]["attempt"] == 1


def test_3010_is_success_with_a_restart_required(tmp_path: Path) -> None:
    mp = RecordingMP()
    counter = tmp_path / "runs"
    adv = _cached_advertisement(
        tmp_path, f"echo run >> '{counter}'; echo 3010 > \"$PEERDP_EXIT_CODE_FILE\"", key="v1"
    )
    agent = _agent(tmp_path, mp)
    outcome = agent.evaluate(adv)
    assert (outcome.result, outcome.exit_code, outcome.restart_required) == (SUCCEEDED, 3010, True)
    [succeeded] = _sent(mp, "program_succeeded")
    assert (succeeded["exit_code"], succeeded["state"]) == (3010, "restart_required")
    assert "restart required" in succeeded["detail"]
    assert not _sent(mp, "program_failed", "advertisement_failed")
    assert agent.evaluate(adv).result == ALREADY_DONE
    # A rerun runs a succeeded advertisement again.
    rerun = _cached_advertisement(tmp_path, adv.command_line, rerun=1, key="v2")
    assert agent.evaluate(rerun).result == SUCCEEDED and _runs(counter) == 2
    assert agent.evaluate(rerun).result == ALREADY_DONE


def test_a_wide_exit_code_is_reported_through_the_exit_code_file(tmp_path: Path) -> None:
    from peerdp.agents.client import run_program

    adv = advertisement(command_line='echo 1641 > "$PEERDP_EXIT_CODE_FILE"; exit 1')
    assert run_program(adv, tmp_path, tmp_path / "a.log")[0] == 1641
    # 3010 as an exit status is cut to 8 bits by the OS: the file is the way to say it.
    assert (
        run_program(advertisement(command_line="exit 3010"), tmp_path, tmp_path / "b.log")[0] == 194
    )
    garbage = advertisement(command_line='echo nonsense > "$PEERDP_EXIT_CODE_FILE"; exit 3')
    assert run_program(garbage, tmp_path, tmp_path / "c.log")[0] == 3
    # The file of an earlier run is not read again.
    assert run_program(advertisement(command_line="exit 0"), tmp_path, tmp_path / "a.log")[0] == 0


def test_a_programs_own_success_code(tmp_path: Path) -> None:
    mp = RecordingMP()
    adv = _cached_advertisement(tmp_path, "exit 17", success_exit_codes=(17,))
    agent = _agent(tmp_path, mp)
    outcome = agent.evaluate(adv)
    assert (outcome.result, outcome.restart_required) == (SUCCEEDED, False)
    [succeeded] = _sent(mp, "program_succeeded")
    assert (succeeded["exit_code"], succeeded["state"]) == (17, "succeeded")


def test_no_content_counts_its_own_attempts_and_fails_with_the_reason(tmp_path: Path) -> None:
    class NoContentMP(RecordingMP):
        def content_location(self, *args: Any) -> dict[str, Any]:
            return {"distribution_points": [], "reason": "on_demand_in_progress", "detail": ""}

    mp = NoContentMP()
    agent = _agent(tmp_path, mp, interval_s=30, content_attempts=2, program_attempts=1)
    adv = advertisement(key="v1")
    first = agent.evaluate(adv)
    assert first.result == FAILED
    [located] = _sent(mp, "content_location_failed")
    assert (located["state"], located["attempt"]) == ("on_demand_in_progress", 1)
    assert located["next_attempt_at"] is not None
    final = agent.evaluate(adv)
    assert final.detail.startswith("failed after 2 of 2 attempts to get the content: ")
    assert "on_demand_in_progress" in final.detail
    assert _sent(mp, "content_location_failed")[-1]["next_attempt_at"] is None
    assert len(_sent(mp, "advertisement_failed")) == 1


def test_the_service_wakes_for_the_next_attempt(tmp_path: Path) -> None:
    mp = RecordingMP()
    manifest = manifest_of("PS100001", FILES)
    cache_with(PackageCache(tmp_path), manifest, FILES)
    agent = _agent(tmp_path, mp, interval_s=120)
    entry = {
        "id": 1,
        "name": "adv",
        "package_id": "PS100001",
        "source_version": 1,
        "manifest_digest": manifest.digest(),
        "program": {"name": "install", "command_line": "exit 1", "timeout_s": 60},
        "schedule": {"available_at": "2024-01-01T00:00:00Z", "mandatory_at": None},
        "rerun": 0,
    }
    policy = {"advertisements": [entry]}
    assert agent._next_wait(policy) == 3600.0  # nothing failed: the poll interval
    agent.cycle(policy, wait_for_retry=True)
    assert 100 < agent._next_wait(policy) <= 120
    assert agent.cycle(policy, wait_for_retry=True)[0].result == WAITING
    # The entry changes (a rerun): a fresh advertisement, due now.
    rerun = {"advertisements": [{**entry, "rerun": 5}]}
    assert Advertisement.from_policy(rerun["advertisements"][0]).key != (
        Advertisement.from_policy(entry).key
    )
    assert agent.cycle(rerun, wait_for_retry=True)[0].result == FAILED
    # So does a changed program or a new source version (the content is then fetched anew).
    fixed = {**entry, "program": {**entry["program"], "command_line": "exit 0"}}
    assert agent.cycle({"advertisements": [fixed]}, wait_for_retry=True)[0].result == SUCCEEDED
    keys = {
        Advertisement.from_policy(e).key
        for e in (entry, fixed, {**entry, "source_version": 2}, {**entry, "name": "renamed"})
    }
    assert len(keys) == 4

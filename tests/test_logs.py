"""The one logging set-up: JSON lines with the event's and the process's fields, readable
lines on a terminal, third-party records in the same format, bad formats refused."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from peerdp import __version__, logs
from peerdp.config import ConfigError


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(logs.LOG_FORMAT_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    process = dict(logs._PROCESS)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._PROCESS.clear()
    logs._PROCESS.update(process)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(stream)]


def test_json_events_carry_their_fields_and_the_process_s() -> None:
    out = io.StringIO()
    assert logs.setup("json", role="branch_dp", stream=out) == "json"
    logs.bind_process(dp="BR01-DP", dp_id=2)
    logs.get_logger("peerdp.test").info("pull started", package_id="PS100001", source_version=3)
    (event,) = json_lines(out)
    assert list(event)[:4] == ["timestamp", "level", "logger", "event"]
    assert event["timestamp"].endswith("Z")
    assert event["level"] == "info" and event["logger"] == "peerdp.test"
    assert event["event"] == "pull started"
    assert event["package_id"] == "PS100001" and event["source_version"] == 3
    assert event["role"] == "branch_dp" and event["dp"] == "BR01-DP" and event["dp_id"] == 2
    assert event["peerdp"] == __version__ and event["pid"] == os.getpid()


def test_an_event_s_own_field_wins_over_the_process_s() -> None:
    out = io.StringIO()
    logs.setup("json", role="site", stream=out)
    logs.bind_process(dp="HQ-DP01")
    logs.get_logger("peerdp.test").info("push started", dp="BR02-DP")
    (event,) = json_lines(out)
    assert event["dp"] == "BR02-DP"


def test_records_of_other_libraries_are_json_lines_too() -> None:
    # Even after a server in this process configured uvicorn's own logging (its default
    # log_config: handlers of its own, no propagation), as tests' in-process servers do.
    uvicorn.Config(app=lambda *_: None)
    out = io.StringIO()
    logs.setup("json", role="standard_dp", stream=out)
    logging.getLogger("uvicorn.error").warning("port %d is busy", 8081)
    (event,) = json_lines(out)
    assert event["event"] == "port 8081 is busy"
    assert event["level"] == "warning" and event["logger"] == "uvicorn.error"
    assert event["role"] == "standard_dp"


def test_an_exception_is_one_json_line_with_its_traceback() -> None:
    out = io.StringIO()
    logs.setup("json", stream=out)
    try:
        raise ValueError("broken manifest")
    except ValueError:
        logs.get_logger("peerdp.test").exception("applying the policy failed")
    (event,) = json_lines(out)
    assert event["level"] == "error"
    assert "ValueError: broken manifest" in event["exception"]


def test_console_lines_read_as_words_and_leave_out_the_process_fields() -> None:
    out = io.StringIO()
    logs.setup("console", role="client", stream=out)
    logs.bind_process(client="BR01-PC001")
    log = logs.get_logger("peerdp.client")
    log.info("peerdp client BR01-PC001 running")
    log.warning("program exited", exit_code=1, duration_s=0.5)
    running, exited = lines(out)
    assert "[info" in running and running.split("] ", 1)[1].startswith(
        "peerdp client BR01-PC001 running"
    )
    assert "[warning" in exited and "program exited" in exited
    assert "exit_code=1" in exited and "duration_s=0.5" in exited
    assert "role=" not in exited and "client=" not in exited and "{" not in exited


def test_the_level_drops_what_is_below_it() -> None:
    out = io.StringIO()
    logs.setup("json", level=logging.WARNING, stream=out)
    log = logs.get_logger("peerdp.test")
    log.info("content located")
    log.debug("object received")
    log.warning("content not located", reason="on_demand_triggered")
    assert [e["event"] for e in json_lines(out)] == ["content not located"]


def test_the_format_comes_from_the_variable_when_no_option_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "json")
    out = io.StringIO()
    assert logs.setup(None, stream=out) == "json"
    assert logs.setup("console", stream=out) == "console"  # the option wins


@pytest.mark.parametrize("bad", ["xml", "JSONL", "text "])
def test_an_unknown_format_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(ConfigError) as refused:
        logs.setup(bad, stream=io.StringIO())
    message = str(refused.value)
    assert "console, json" in message and logs.LOG_FORMAT_ENV in message
    assert "\n" not in message


def test_a_console_traceback_is_plain_text() -> None:
    out = io.StringIO()
    logs.setup("console", stream=out)
    try:
        raise ValueError("broken manifest")
    except ValueError:
        logs.get_logger("peerdp.test").exception("applying the policy failed")
    text = out.getvalue()
    assert "applying the policy failed" in text
    assert "Traceback (most recent call last):" in text
    assert text.rstrip().endswith("ValueError: broken manifest")
    assert "╭" not in text  # no box drawn around it

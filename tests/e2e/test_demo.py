"""`peerdp demo` as a user runs it: exit code, narration, nothing left behind, the database.

The demo starts a site server, a standard DP, a branch DP and clients as real processes;
these tests run it as a subprocess with `--data-dir` in a temporary folder (every one of
its processes carries that path on its command line, so `pgrep -f` finds any left over),
then read the site's SQLite database read-only.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers.processes import peerdp_cmd

pytestmark = pytest.mark.slow  # `peerdp demo` starts every role as a real process

# Rich wraps at 80 columns when not on a terminal; a wide console keeps one line per line.
DEMO_ENV = {
    **os.environ,
    "COLUMNS": "200",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
}
DEMO_TIMEOUT = 400  # seconds; a loaded machine running the whole suite is slow
SUMMARY_ROW = re.compile(r"^\s*(PC-\d\d)\s*│\s*(\S+)\s*│\s*(\S+)\s*│\s*(.*?)\s*│\s*(\S+)\s*$")


def run_demo(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        peerdp_cmd("demo", "--data-dir", str(data_dir), *args),
        env={**DEMO_ENV, **env},
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def leftovers(data_dir: Path) -> list[str]:
    """Processes whose command line names the demo's data directory."""
    found = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True, text=True)
    return found.stdout.splitlines()


def wait_no_leftovers(data_dir: Path, timeout: float = 10) -> list[str]:
    """Give the kernel a moment to reap; the demo must have ended every process itself."""
    deadline = time.monotonic() + timeout
    while (left := leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def printed_ports(output: str) -> set[int]:
    ports = {urlsplit(url).port for url in re.findall(r"http://127\.0\.0\.1:\d+", output)}
    return {port for port in ports if port is not None}


def is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def site_db(data_dir: Path) -> sqlite3.Connection:
    path = data_dir / "site" / "site.db"
    assert path.exists(), f"no site database at {path}"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def summary(output: str) -> dict[str, tuple[str, ...]]:
    """The summary table: client -> (first attempt, then, content from, exit code)."""
    rows = {}
    for line in output.splitlines():
        if found := SUMMARY_ROW.match(line):
            rows[found[1]] = found.groups()[1:]
    return rows


def first_attempt_reasons(output: str) -> dict[str, str]:
    """`PC-01: failed on_demand_triggered: ...` lines of the first attempt."""
    first = output.split("(first attempt)", 1)[1].split("(retry)", 1)[0]
    return dict(re.findall(r"^\s+(PC-\d\d): failed (\w+)", first, re.MULTILINE))


def check_finished_demo(
    data_dir: Path, done: subprocess.CompletedProcess[str], clients: list[str]
) -> sqlite3.Connection:
    """What every finished demo must show: exit 0, each client failed then succeeded from
    BR01-DP, nothing left running, its ports closed; the database for the caller."""
    output = done.stdout
    assert done.returncode == 0, output[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in output + done.stderr
    assert summary(output) == {name: ("failed", "succeeded", "BR01-DP", "0") for name in clients}, (
        output[-3000:]
    )
    assert wait_no_leftovers(data_dir) == []
    ports = printed_ports(output)
    assert len(ports) == 3, output[:2000]  # the site, HQ-DP01 and BR01-DP
    assert [port for port in ports if is_open(port)] == []

    db = site_db(data_dir)
    (branch_id,) = db.execute("SELECT id FROM distribution_points WHERE name='BR01-DP'").fetchone()
    rows = db.execute(
        "SELECT state, origin FROM package_distribution_points WHERE dp_id=?", (branch_id,)
    ).fetchall()
    assert rows == [("installed", "on_demand")]
    requests = db.execute(
        "SELECT state, dp_id, provisioned_at IS NOT NULL FROM on_demand_requests"
    ).fetchall()
    assert requests == [("provisioned", branch_id, 1)]
    for name in clients:
        failed = db.execute(
            "SELECT state FROM status_messages WHERE type='content_location_failed' "
            "AND client_name=?",
            (name,),
        ).fetchall()
        assert len(failed) == 1 and failed[0][0].startswith("on_demand_"), (name, failed)
        succeeded = db.execute(
            "SELECT exit_code, detail FROM status_messages WHERE type='program_succeeded' "
            "AND client_name=?",
            (name,),
        ).fetchall()
        assert len(succeeded) == 1 and succeeded[0][0] == 0, (name, succeeded)
        assert "(from BR01-DP: " in succeeded[0][1], succeeded
    return db


def message_types(db: sqlite3.Connection) -> list[str]:
    return [t for (t,) in db.execute("SELECT type FROM status_messages ORDER BY id")]


def test_demo(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = run_demo(data_dir)
    clients = [f"PC-{i:02d}" for i in range(1, 5)]  # the default: four clients
    db = check_finished_demo(data_dir, done, clients)
    reasons = first_attempt_reasons(done.stdout)
    assert set(reasons) == set(clients), done.stdout[-3000:]
    # One client's request added the branch DP; the others found it already on its way.
    assert sorted(reasons.values()).count("on_demand_triggered") == 1, reasons
    assert set(reasons.values()) <= {"on_demand_triggered", "on_demand_in_progress"}, reasons
    types = message_types(db)
    assert types.count("on_demand_triggered") == 1
    assert "on_demand_delayed" not in types
    # The branch DP pulled the package once, over the WAN, from the standard DP.
    installed = db.execute(
        "SELECT detail FROM status_messages WHERE type='package_state' AND state='installed' "
        "AND dp_id=(SELECT id FROM distribution_points WHERE name='BR01-DP')"
    ).fetchall()
    assert len(installed) == 1 and "(from HQ-DP01: " in installed[0][0]
    assert "bytes over the WAN" in done.stdout
    # BR01-DP's own metrics: one copy pulled, one per client served.
    found = re.search(r"/metrics: ([\d.]+) MiB pulled, ([\d.]+) MiB served", done.stdout)
    assert found, done.stdout[-3000:]
    pulled, served = float(found[1]), float(found[2])
    assert pulled == 24.0 and served >= len(clients) * pulled


def test_demo_delayed(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    # The demo's site is on its embedded SQLite database, whatever PEERDP_DB says.
    unreachable = "postgresql://nobody@127.0.0.1:9/nothing"
    done = run_demo(data_dir, "--delayed", "--clients", "2", PEERDP_DB=unreachable)
    clients = ["PC-01", "PC-02"]
    db = check_finished_demo(data_dir, done, clients)
    assert set(first_attempt_reasons(done.stdout).values()) == {"on_demand_delayed"}
    types = message_types(db)
    # Delayed first (no standard DP held the content), triggered once it arrived there.
    assert types.count("on_demand_delayed") == 1 and types.count("on_demand_triggered") == 1
    assert types.index("on_demand_delayed") < types.index("on_demand_triggered")
    # No client asked again in between: the site carried the request out by itself.
    (triggered_by,) = db.execute(
        "SELECT client_name FROM status_messages WHERE type='on_demand_triggered'"
    ).fetchone()
    (delayed_by,) = db.execute(
        "SELECT client_name FROM status_messages WHERE type='on_demand_delayed'"
    ).fetchone()
    assert triggered_by == delayed_by


def test_demo_refuses_a_used_data_dir(tmp_path: Path) -> None:
    """A data directory with something in it is refused before anything starts."""
    data_dir = tmp_path / "demo"
    (data_dir / "site").mkdir(parents=True)
    (data_dir / "site" / "site.db").write_bytes(b"")
    done = run_demo(data_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not empty" in done.stdout + done.stderr
    assert "Starting the site server" not in done.stdout
    assert sorted(p.name for p in data_dir.rglob("*")) == ["site", "site.db"]


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, 130, "Interrupted"),  # Ctrl-C
        (signal.SIGTERM, 143, "Stopped by SIGTERM"),  # kill, timeout
        (signal.SIGHUP, 129, "Stopped by SIGHUP"),  # the terminal closed
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_every_ending_signal_stops_everything(
    tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    """A signal mid-way (while the clients make their first attempt): the demo stops every
    process it started (the site server, both DPs, the clients), frees their ports and
    exits as a shell expects of that signal (128 + its number)."""
    data_dir = tmp_path / "demo"
    process = subprocess.Popen(
        peerdp_cmd("demo", "--data-dir", str(data_dir)),
        env=DEMO_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    mid_way = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "(first attempt)" in line:
                mid_way.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert mid_way.wait(DEMO_TIMEOUT), "".join(lines)
        running = leftovers(data_dir)
        assert len(running) >= 4, running  # the demo, the site and both DPs at least
        process.send_signal(sig)
        exited = process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(10)
    output = "".join(lines)
    assert exited == code, output[-3000:]
    assert f"{said}: stopping every process" in output
    assert "Traceback" not in output
    assert wait_no_leftovers(data_dir) == []
    assert [port for port in printed_ports(output) if is_open(port)] == []


def test_scripts_demo_runs_peerdp_demo() -> None:
    """The README's first command: scripts/demo sets up, then runs `peerdp demo` with its
    arguments (here --help, so nothing starts)."""
    root = Path(__file__).resolve().parents[2]
    stamp = root / ".venv" / ".peerdp-setup-done"
    if not stamp.exists() or stamp.stat().st_mtime < (root / "pyproject.toml").stat().st_mtime:
        pytest.skip("scripts/setup would install packages; run it first")
    done = subprocess.run(
        [str(root / "scripts" / "demo"), "--help"],
        env=DEMO_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage: peerdp demo" in done.stdout
    assert "--delayed" in done.stdout and "--data-dir" in done.stdout

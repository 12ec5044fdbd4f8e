"""Running the real `peerdp` admin CLI as a subprocess against a site server."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.processes import SiteProcess, peerdp_cmd


@dataclass
class Cli:
    """`peerdp ...` with PEERDP_SITE_URL and PEERDP_ADMIN_TOKEN set for one site."""

    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_site(cls, site: SiteProcess) -> Cli:
        # pytest-xdist workers set COLUMNS=80; the CLI honours COLUMNS, and these tests
        # mean the piped (wide) output a script gets, so it is dropped here.
        inherited = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return cls(
            {**inherited, "PEERDP_SITE_URL": site.url, "PEERDP_ADMIN_TOKEN": site.admin_token}
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            peerdp_cmd(*args),
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, **env: str) -> str:
        """Stdout of a command that must succeed."""
        done = self.run(*args, **env)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str, **env: str) -> Any:
        """The parsed `--json` output of a command that must succeed."""
        return json.loads(self.ok(*args, "--json", **env))

    def fails(self, *args: str, **env: str) -> str:
        """The one-line error of a command that must fail with exit code 1."""
        done = self.run(*args, **env)
        assert done.returncode == 1, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("Error: "), done.stderr
        return done.stderr


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for relpath, data in files.items():
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder

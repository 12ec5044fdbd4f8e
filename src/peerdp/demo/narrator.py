"""What the demo prints: its steps, what the status messages say really happened, the
branch DP's pull as it goes, and the summary table. All of the demo's terminal output."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

# The status messages worth showing.
INTERESTING = frozenset(
    {
        "package_version_created",
        "dp_added_to_package",
        "content_location",
        "on_demand_triggered",
        "on_demand_delayed",
        "content_location_failed",
        "package_state",
        "program_succeeded",
        "program_failed",
    }
)
# Who wrote a message, by its component: the distribution manager is the site's own
# (its source says so: `PS1 distribution manager`), not a DP.
COMPONENTS = {
    "site": "site",
    "distribution": "site",
    "mp": "MP",
    "standard_dp": "DP",
    "branch_dp": "branch DP",
    "client": "client",
}
INDENT = " " * 11  # under the step's text, past its clock

SEVERITY_COLOURS = {"error": "red", "warning": "yellow"}


@dataclass
class Narrator:
    console: Console = field(default_factory=Console)
    started: float = field(default_factory=time.monotonic)

    def title(self, logs: Path) -> None:
        self.console.print(
            f"[bold]peerdp demo[/] — on-demand provisioning of a branch DP "
            f"({datetime.now():%H:%M:%S}); logs in {logs}"
        )

    def refuse(self, problem: str) -> None:
        """Why the demo cannot start."""
        self.console.print(f"[red]error:[/] {problem}", highlight=False)

    def interrupted(self, why: str) -> None:
        """The demo was stopped (`why`: "Interrupted", "Stopped by SIGTERM")."""
        self.console.print(f"\n[yellow]{why}: stopping every process[/]")

    def step(self, text: str) -> None:
        """A step's heading after its clock; a long one wraps under its own first word."""
        heading = Table.grid(padding=(0, 1, 0, 0))
        heading.add_column(no_wrap=True)
        heading.add_column()
        heading.add_row(f"{self._clock()} ▶", Text.from_markup(text))
        self.console.print()
        self.console.print(heading, style="bold cyan")

    def say(self, text: str) -> None:
        """A line under the current step; `text` may use Rich markup (`[bold]…[/]`).
        Wrapped at spaces to the terminal's width, each further line indented as the first."""
        indented = Padding(Text.from_markup(text), (0, 0, 0, len(INDENT)))
        self.console.print(indented, highlight=False)

    def _clock(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def status_messages(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The interesting ones among `rows` (status messages), one line each."""
        for row in rows:
            if row["type"] not in INTERESTING:
                continue
            who = row.get("client_name") or row["source"]
            component = COMPONENTS.get(str(row.get("component")), str(row.get("component")))
            # Escaped: `[installed]` would otherwise be read as a Rich style and vanish.
            state = escape(f" [{row['state']}]") if row.get("state") else ""
            colour = SEVERITY_COLOURS.get(row["severity"], "green")
            self.say(
                f"[dim]status[/] [{colour}]{row['type']}{state}[/] "
                f"[dim]{escape(component)} {escape(who)}:[/] {escape(row['detail'])}"
            )

    def client_outcome(self, name: str, outcome: Mapping[str, Any]) -> None:
        """One client's run: green if its program succeeded, red otherwise."""
        colour = "green" if outcome.get("exit_code") == 0 else "red"
        detail = escape(str(outcome.get("detail", "")))
        self.say(f"[{colour}]{escape(name)}: {outcome.get('result')}[/] {detail}")

    @contextmanager
    def transfer(self, who: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar of `total` bytes for `who`; the call given to the block sets the bytes done."""
        columns = (
            TextColumn(f"{INDENT}{who}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task("pull", total=total)
            yield lambda done: bar.update(task, completed=done)

    def table(self, headings: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        table = Table(show_edge=False)
        for heading in headings:
            table.add_column(heading)
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

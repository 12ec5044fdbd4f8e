"""What the admin commands print: Rich tables for people, the API's raw JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from peerdp.domain.sizes import human_size
from peerdp.domain.timestamps import parse_rfc3339

Row = Mapping[str, Any]
Formatter = Callable[[Any], Text]

STATE_STYLES = {
    "installed": "green",
    "provisioned": "green",
    "install_pending": "yellow",
    "waiting_for_prestage": "cyan",
    "removal_pending": "yellow",
    "delayed": "yellow",
    "install_retrying": "dark_orange",
    "removal_retrying": "dark_orange",
    "install_failed": "bold red",
    "removal_failed": "bold red",
    "error": "bold red",
    "warning": "yellow",
    # a deployment on a client (`advertisement status`)
    "succeeded": "green",
    "failed": "bold red",
    "waiting_for_content": "yellow",
    "downloading": "cyan",
    "running": "cyan",
    "not_run": "dim",
}


PIPE_WIDTH = 200


@cache
def console() -> Console:
    """Stdout: the terminal's width, or wide lines when piped (COLUMNS overrides)."""
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=PIPE_WIDTH if piped else None)


@cache
def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """The API's answer as JSON on stdout, exactly as received."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(message: str, style: str = "") -> None:
    """A line for people (on stdout): confirmations and summaries."""
    console().print(Text(message, style=style))


# -- cell formatters -----------------------------------------------------------------


def _missing() -> Text:
    return Text("-", style="dim")


def plain(value: Any) -> Text:
    if value is None or value == "" or value == []:
        return _missing()
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False))
    return Text(str(value))


def yes_no(value: Any) -> Text:
    if value is None:
        return _missing()
    return Text("yes", style="green") if value else Text("no", style="dim")


def local_time(value: Any) -> str:
    """An RFC 3339 time from the API as local time, `2024-05-01 14:03:22`."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = parse_rfc3339(value)
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def when(value: Any) -> Text:
    shown = local_time(value)
    return Text(shown) if shown else _missing()


def size(value: Any) -> Text:
    return Text(human_size(value)) if isinstance(value, int) else _missing()


def state(value: Any) -> Text:
    if value is None:
        return _missing()
    return Text(str(value), style=STATE_STYLES.get(str(value), ""))


def short(length: int) -> Formatter:
    """Long identifiers (digests) cut to `length` characters in tables."""

    def cut(value: Any) -> Text:
        text = plain(value)
        return Text(text.plain[:length] + "…") if len(text.plain) > length else text

    return cut


def plural(number: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def a(noun: str) -> str:
    """`a boundary`, `an advertisement`."""
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def count(value: Any) -> Text:
    return Text(str(len(value))) if isinstance(value, list) else _missing()


# -- tables and records ------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a table: its title, the answer's field and how to show it."""

    title: str
    key: str | Callable[[Row], Any]
    fmt: Formatter = plain
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False

    def cell(self, row: Row) -> Text:
        return self.fmt(self.key(row) if callable(self.key) else row.get(self.key))


def table(rows: Sequence[Row], columns: Sequence[Column], *, header: bool = True) -> Table:
    grid = Table(show_header=header, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        grid.add_column(column.title, justify=column.justify, no_wrap=column.no_wrap)
    for row in rows:
        grid.add_row(*(column.cell(row) for column in columns))
    return grid


def print_table(rows: Sequence[Row], columns: Sequence[Column], *, empty: str) -> None:
    if not rows:
        say(empty, "dim")
        return
    console().print(table(rows, columns))


_WORDS = {"id": "ID", "ids": "IDs", "dp": "DP", "ip": "IP", "ad": "AD", "url": "URL", "s": "(s)"}


# Fields whose label is not their words: a machine's last_seen is its last contact with
# the management point (any request, or a policy long-poll it holds).
_LABELS = {"last_seen": "Last contact"}


def _label(key: str) -> str:
    """`protected_boundary_ids` -> `Protected boundary IDs`."""
    if key in _LABELS:
        return _LABELS[key]
    words = [_WORDS.get(word, word) for word in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _guess(key: str, value: Any) -> Text:
    if key.endswith("_at") or key == "last_seen":
        return when(value)
    if key in ("state", "severity"):
        return state(value)
    if key in ("total_size", "new_bytes", "size"):
        return size(value)
    return plain(value)


def record_table(row: Row, columns: Iterable[Column] | None = None) -> Table:
    """One object as a two-column table: every field of the answer, or the given ones."""
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if columns is None:
        for key, value in row.items():
            grid.add_row(_label(key), _guess(key, value))
    else:
        for column in columns:
            grid.add_row(column.title, column.cell(row))
    return grid


def print_record(row: Row, columns: Iterable[Column] | None = None) -> None:
    console().print(record_table(row, columns))


def emit(data: Any, json_out: bool, render: Callable[[Any], None]) -> None:
    """Print the API's answer: raw JSON with `--json`, else through `render`."""
    if json_out:
        print_json(data)
    else:
        render(data)

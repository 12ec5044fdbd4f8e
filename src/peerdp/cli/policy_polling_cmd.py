"""`peerdp site policy-polling`: how the site's clients fetch their policy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import emit, say
from peerdp.cli.timespec import parse_duration
from peerdp.domain.policy_polling import PolicyPolling

PATH = "/site/policy-polling"
# The figure an administrator sizes the site by.
CLIENTS_SHOWN = 100_000


def policy_polling(
    mode: Annotated[
        Literal["long_poll", "interval"] | None,
        typer.Option(
            "--mode",
            help="long_poll: each client holds a request open and gets a change at once; "
            "interval: each client asks every --interval plus up to --randomise at random, "
            "holding nothing. Without options, show the setting.",
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            metavar="DURATION",
            help="Interval mode: time between a client's polls (1h, 30m; at least 1m).",
        ),
    ] = None,
    randomise: Annotated[
        str | None,
        typer.Option(
            "--randomise",
            metavar="DURATION",
            help="Interval mode: up to this much more at random, 0 to the interval (15m).",
        ),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show or set how clients fetch their policy: long-poll, or an interval (SCCM's).

    A change reaches clients through their policy: at once for those long-polling, at
    their next poll for those polling at an interval. --interval or --randomise alone
    means --mode interval.
    """
    body = _body(mode, interval, randomise)
    with connect(site) as api:
        answer = api.get(PATH) if body is None else api.put(PATH, body)
    emit(answer, json_out, _shown)


def _body(mode: str | None, interval: str | None, randomise: str | None) -> dict[str, Any] | None:
    """The PUT body, or None to show the setting; the site checks the values."""
    if mode is None and interval is None and randomise is None:
        return None
    body: dict[str, Any] = {"mode": mode or "interval"}
    if interval is not None:
        body["interval_s"] = _seconds(interval)
    if randomise is not None:
        body["randomise_s"] = _seconds(randomise)
    return body


def _seconds(text: str) -> int:
    if text.strip() == "0":
        return 0
    return int(parse_duration(text).total_seconds())


def _shown(answer: dict[str, Any]) -> None:
    say(f"Clients fetch policy by {answer['description']}.")
    setting = PolicyPolling.from_policy(answer)
    if setting.by_interval:
        rate = setting.requests_per_second(CLIENTS_SHOWN)
        say(f"{CLIENTS_SHOWN:,} clients make about {rate:.0f} policy requests a second.")

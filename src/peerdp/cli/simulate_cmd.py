"""`peerdp simulate SCENARIO.toml`: predict a deployment with the real rule, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from peerdp.cli.commands.advertisement import PROTECTED_ONLY_HELP, REMOTE_HELP, OnSlow
from peerdp.cli.connection import SiteOption, connect, fail
from peerdp.cli.output import console
from peerdp.domain.sizes import human_size

COMPARE_MODELS = ("sccm2007", "peerdp")


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def simulate(
    scenario: Annotated[
        Path | None, typer.Argument(help="The scenario file (TOML); not with --advertisement.")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full result here as JSON.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write PNG plots into this folder.")
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="Also run the scenario under this policy model (sccm2007: 60-minute "
            "polling; peerdp: long-poll) and show both.",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Policy model: peerdp or sccm2007 (default: the file's)."),
    ] = None,
    advertisement: Annotated[
        str | None,
        typer.Option(
            "--advertisement",
            help="Dry run on the site instead of a scenario: this advertisement (ID or name), "
            "for the clients of its collection as they were last seen.",
        ),
    ] = None,
    package: Annotated[
        str | None,
        typer.Option(
            "--package",
            metavar="PACKAGE",
            help="Dry run of a deployment not advertised yet: this package (ID or name), "
            "with --collection.",
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection", metavar="COLLECTION", help="With --package: the collection offered it."
        ),
    ] = None,
    protected_only: Annotated[
        bool,
        typer.Option("--protected-only", help="With --package: " + _lower(PROTECTED_ONLY_HELP)),
    ] = False,
    on_slow: OnSlow = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="With --package: " + _lower(REMOTE_HELP))
    ] = False,
    site: SiteOption = None,
) -> None:
    """Simulate a deployment described by SCENARIO.toml and summarise it.

    Content-location answers and on-demand provisioning come from the management
    point's own rule; transfers share link bandwidth; clients retry as the agent does.
    With --advertisement, or --package and --collection for one not made yet, a dry run
    on the site's real facts instead (nothing changes).
    """
    proposal = package is not None or collection is not None
    if advertisement is not None or proposal:
        if scenario is not None:
            fail("give a scenario file or a dry run on the site, not both")
        if advertisement is not None and proposal:
            fail("give --advertisement, or --package and --collection, not both")
        if proposal and (package is None or collection is None):
            fail("a deployment not advertised yet needs both --package and --collection")
        from peerdp.cli.simulate_site import advertised, dry_run, proposed

        with connect(site) as api:
            if advertisement is not None:
                adv = advertised(api, advertisement)
            else:
                assert package is not None and collection is not None
                adv = proposed(
                    api,
                    package,
                    collection,
                    protected_only=protected_only,
                    on_slow=on_slow or "do_not_run",
                    allow_remote=allow_remote,
                )
            dry_run(api, adv, json_path)
        return
    if scenario is None:
        fail("give a scenario file (or --advertisement for a dry run on the site)")
    # Imported here so that other commands start without loading the simulator.
    from peerdp.simulate.results import Result
    from peerdp.simulate.results import simulate as run
    from peerdp.simulate.scenario import ScenarioError, load
    from peerdp.simulate.world import build

    for name, value in (("--compare", compare), ("--policy", policy)):
        if value is not None and value not in COMPARE_MODELS:
            fail(f"{name}: expected peerdp or sccm2007, not {value!r}")
    try:
        world = build(load(scenario))
    except ScenarioError as exc:
        fail(str(exc))
    runs: list[Result] = [run(world, policy)]
    if compare is not None and compare != runs[0].summary["policy_model"]:
        runs.append(run(world, compare))
    for result in runs:
        _print(result.summary)
    if json_path is not None:
        data: Any = runs[0].to_json() if len(runs) == 1 else [r.to_json() for r in runs]
        json_path.write_text(json.dumps(data, indent=2) + "\n")
    if plots is not None:
        from peerdp.simulate.plots import draw_all

        for path in draw_all(runs, plots):
            console().print(f"plot: {path}")


def _hours(seconds: Any) -> str:
    if seconds is None:
        return "never"
    return f"{seconds / 3600:.2f} h ({seconds:,.0f} s)"


def _print(s: dict[str, Any]) -> None:
    out = console()
    table = Table(title=f"{s['scenario']} · policy {s['policy_model']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    times = s["time_to_succeeded_s"]
    rows = [
        ("clients targeted", f"{s['targeted']:,} in {s['branches']:,} branches"),
        ("succeeded", f"{s['succeeded']:,}"),
        *((f"time to {pct} succeeded", _hours(t)) for pct, t in times.items()),
        ("on-demand provisionings", f"{s['on_demand_provisionings']:,}"),
        ("branch DP pulls", f"{s['branch_dp_pulls']:,}"),
        (
            "WAN bytes",
            f"{human_size(s['wan_bytes'])} (floor, one copy per branch: "
            f"{human_size(s['wan_floor_bytes'])}; links over it: {s['wan_links_over_floor']})",
        ),
        (
            "MP requests/s",
            f"peak {s['mp_requests_per_s_peak']:,}, mean {s['mp_requests_per_s_mean']:,}"
            + (
                f" (+ {s['policy_polls_per_s']:,} policy polls/s)"
                if s["policy_polls_per_s"]
                else ""
            ),
        ),
        ("peak transfers per DP", _peaks(s["peak_transfers_by_dp"])),
        *(
            ("WAN over its floor", f"{name}: {human_size(extra)} more")
            for name, extra in list(s["wan_most_over_floor"].items())[:3]
        ),
    ]
    for label, value in rows:
        table.add_row(label, value)
    for reason, n in s["never_succeeded"].items():
        table.add_row("never succeeded", f"{n:,}: {reason}")
    out.print(table)


def _peaks(peaks: dict[str, int]) -> str:
    if not peaks:
        return "none"
    top = sorted(peaks.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{name} {n}" for name, n in top) + (
        f" … ({len(peaks)} DPs)" if len(peaks) > 3 else ""
    )

"""PNG plots of simulated deployments (matplotlib, Agg backend: no display needed).

Each function draws every run given (one per policy model) on one figure, so
`--compare sccm2007` shows both curves side by side.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from peerdp.simulate.results import Result

HOUR = 3600.0


def draw_all(runs: Sequence[Result], folder: Path) -> list[Path]:
    """Every plot of `runs` into `folder` (made if missing); the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        deployment_curve(runs, folder / "deployment.png"),
        wan_bytes(runs, folder / "wan-bytes.png"),
        mp_load(runs, folder / "mp-load.png"),
        branch_completion(runs, folder / "branch-completion.png"),
    ]


def _label(run: Result) -> str:
    return str(run.summary["policy_model"])


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def deployment_curve(runs: Sequence[Result], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        total = max(1, int(run.summary["targeted"]))
        xs = [0.0, *(t / HOUR for t in run.curve)]
        ys = [0.0, *(100.0 * (n + 1) / total for n in range(len(run.curve)))]
        ax.step(xs, ys, where="post", label=_label(run))
    ax.set_xlabel("hours")
    ax.set_ylabel("clients succeeded (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Deployment: {runs[0].summary['scenario']}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def wan_bytes(runs: Sequence[Result], path: Path) -> Path:
    """Cumulative bytes over every WAN link, integrated from the rate's changes."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        xs, ys, total = [0.0], [0.0], 0.0
        points = run.wan_rates
        for (t0, rate), (t1, _) in itertools.pairwise(points):
            total += rate * (t1 - t0)
            xs.append(t1 / HOUR)
            ys.append(total / 2**30)
        ax.plot(xs, ys, label=_label(run))
    ax.set_xlabel("hours")
    ax.set_ylabel("WAN bytes (GiB, all links)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def mp_load(runs: Sequence[Result], path: Path) -> Path:
    """MP requests per minute (the per-second counts summed by minute)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        per_minute: dict[int, int] = {}
        for second, n in run.mp_per_s.items():
            per_minute[second // 60] = per_minute.get(second // 60, 0) + n
        minutes = sorted(per_minute)
        base = float(run.summary["policy_polls_per_s"]) * 60
        ax.plot(
            [m / 60 for m in minutes],
            [per_minute[m] / 60 + base / 60 for m in minutes],
            label=_label(run),
        )
    ax.set_xlabel("hours")
    ax.set_ylabel("MP requests per second (minute mean)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def branch_completion(runs: Sequence[Result], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        if run.branch_done:
            ax.hist([t / HOUR for t in run.branch_done], bins=40, alpha=0.6, label=_label(run))
    ax.set_xlabel("hours until every client of the branch succeeded")
    ax.set_ylabel("branches")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)

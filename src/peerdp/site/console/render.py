"""The console's pages: Jinja2 templates (templates/), rendered on the server.

Times are written as `<time datetime>` in UTC and localised in the browser
(static/console.js); sizes in binary units."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from peerdp.domain.sizes import human_size
from peerdp.site.console.sessions import SignedIn

HERE = Path(__file__).parent
STATIC = HERE / "static"


def time_element(moment: datetime | None) -> Markup:
    """A time the browser shows in its local time; UTC until its script runs."""
    if moment is None:
        return Markup('<span class="missing">—</span>')
    utc = moment.astimezone(UTC)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), shown)


def duration(seconds: float | None) -> str:
    """A short span of time, for an estimate: '45 s', '3 min 20 s', '2 h 05 min'."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def left_s(done: int, total: int, bytes_per_s: int | None) -> float | None:
    """Seconds until `total` at `bytes_per_s` (None: no rate known)."""
    return (total - done) / bytes_per_s if bytes_per_s else None


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["size"] = human_size
_env.filters["time"] = time_element
_env.filters["duration"] = duration
_env.globals["percent"] = percent
_env.globals["left_s"] = left_s


def page_or_live(request: Request, whole: str, live: str) -> str:
    """The template a page's route renders: `whole`, or its changing part `live` when asked
    at the page's path + `/live` (one route serves both, with the same parameters)."""
    return live if request.url.path.endswith("/live") else whole


def render(request: Request, template: str, user: SignedIn | None, **values: Any) -> str:
    """The HTML of a page (or a fragment) of the console, for `user`."""
    return _env.get_template(template).render(request=request, user=user, **values)


def answer(html: str, status_code: int = 200) -> HTMLResponse:
    """HTML the console answers with: never cached (it is one signed-in user's view)."""
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def page(
    request: Request,
    template: str,
    user: SignedIn | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page (or a fragment) of the console, for `user` (None on the sign-in page)."""
    return answer(render(request, template, user, **values), status_code)

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
_env.globals["percent"] = percent


def page(
    request: Request,
    template: str,
    user: SignedIn | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page (or a fragment) of the console, for `user` (None on the sign-in page)."""
    html = _env.get_template(template).render(request=request, user=user, **values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})

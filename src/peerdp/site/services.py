"""The site's background services, run by every site-server process."""

from __future__ import annotations

from peerdp.site.app import Service

SERVICES: list[Service] = []

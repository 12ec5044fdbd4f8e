"""The site's background services, run by every site-server process."""

from __future__ import annotations

from peerdp.site.app import Service
from peerdp.site.distribution import distribution_manager

SERVICES: list[Service] = [distribution_manager]

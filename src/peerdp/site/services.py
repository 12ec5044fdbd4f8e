"""The site's background services, run by every site-server process."""

from __future__ import annotations

from peerdp.site.app import Service
from peerdp.site.collector import paced_collection
from peerdp.site.distribution import distribution_manager
from peerdp.site.mp.warm import warm_caches
from peerdp.site.upkeep import site_upkeep

SERVICES: list[Service] = [distribution_manager, warm_caches, paced_collection, site_upkeep]

"""Builds a small site through the real admin API and MP, for management-point tests."""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.api import ok, tar_of, unique
from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site

# Each world gets its own branch subnet, so worlds sharing a site never overlap.
_NETS = itertools.count(random.randint(0, 40_000))


@dataclass
class World:
    """A head office with a standard DP, one branch with a protected branch DP."""

    site: SiteProcess
    admin: httpx.Client
    branch_net: str
    package: dict[str, Any] = field(default_factory=dict)
    advertisement: dict[str, Any] = field(default_factory=dict)
    standard_dp: dict[str, Any] = field(default_factory=dict)
    branch_dp: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)

    def register(
        self, role: str, name: str, dp_id: int | None = None, **facts: Any
    ) -> httpx.Client:
        body: dict[str, Any] = {"role": role, "max_uses": 1}
        if dp_id is not None:
            body["dp_id"] = dp_id
        token = ok(self.admin.post("/enrolment-tokens", json=body), 201)["token"]
        answer = ok(
            httpx.post(
                self.site.url + "/mp/v1/register", json={"token": token, "name": name, **facts}
            ),
            201,
        )
        return httpx.Client(
            base_url=self.site.url + "/mp/v1",
            headers={"Authorization": f"Bearer {answer['credential']}"},
            timeout=60,
        )

    def client(self, name: str, host: int = 20) -> httpx.Client:
        ok(
            self.admin.post(
                f"/collections/{self.collection['id']}/members", json={"member_names": [name]}
            )
        )
        return self.register("client", name, ip_addresses=[f"{self.branch_net}.{host}"])

    def locate(self, client: httpx.Client, host: int = 20) -> dict[str, Any]:
        body = {
            "advertisement_id": self.advertisement["id"],
            "package_id": self.package["id"],
            "source_version": self.package["source_version"],
            "ip_addresses": [f"{self.branch_net}.{host}"],
        }
        answer: dict[str, Any] = ok(client.post("/content-location", json=body))
        return answer

    def report(self, dp: httpx.Client, state: str, version: int | None = None) -> dict[str, Any]:
        message = {
            "type": "package_state",
            "package_id": self.package["id"],
            "source_version": version or self.package["source_version"],
            "state": state,
        }
        answer: dict[str, Any] = ok(dp.post("/status", json={"messages": [message]}))
        return answer

    def dp_list(self) -> dict[int, dict[str, Any]]:
        rows = ok(self.admin.get(f"/packages/{self.package['id']}/distribution-points"))
        return {row["dp_id"]: row for row in rows}

    def messages(self, type_: str, at_least: int = 0) -> list[dict[str, Any]]:
        """Status messages of a type; waits (up to 10 s) for `at_least` of them to arrive,
        as content-location answers are written in batches."""
        deadline = time.monotonic() + 10
        while True:
            rows: list[dict[str, Any]] = ok(
                self.admin.get(
                    "/status-messages", params={"package_id": self.package["id"], "type": type_}
                )
            )
            if len(rows) >= at_least or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def build(
    site: SiteProcess,
    *,
    protected_only: bool = True,
    on_demand: bool = True,
    protected_branch: bool = True,
    branch_net: str | None = None,
) -> World:
    """Boundaries, a standard DP holding the package (admin-added), a branch DP, an advert."""
    admin = site.admin()
    tag = unique("w")
    n = next(_NETS)
    net = branch_net or f"10.{20 + n // 250 % 230}.{n % 250}"
    world = World(site, admin, net)
    hq = ok(
        admin.post(
            "/boundaries",
            json={"name": f"{tag}-hq", "type": "ip_subnet", "value": "192.168.250.0/24"},
        ),
        201,
    )
    branch = ok(
        admin.post(
            "/boundaries", json={"name": f"{tag}-br", "type": "ip_subnet", "value": f"{net}.0/24"}
        ),
        201,
    )
    world.standard_dp = ok(
        admin.post(
            "/distribution-points",
            json={
                "name": f"{tag}-std",
                "kind": "standard",
                "bits_enabled": True,
                "ip_addresses": ["192.168.250.5"],
                "url": "http://127.0.0.1:9",
            },
        ),
        201,
    )
    protected = [branch["id"]] if protected_branch else []
    world.branch_dp = ok(
        admin.post(
            "/distribution-points",
            json={
                "name": f"{tag}-br-dp",
                "kind": "branch",
                "protected_boundary_ids": protected,
                "ip_addresses": [f"{net}.5"],
            },
        ),
        201,
    )
    assert hq["id"] != branch["id"]
    world.package = ok(
        admin.post("/packages", json={"name": f"{tag}-pkg", "on_demand": on_demand}), 201
    )
    version = ok(
        admin.post(
            f"/packages/{world.package['id']}/versions",
            content=tar_of({"setup.sh": tag.encode()}),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    world.package["source_version"] = version["source_version"]
    ok(
        admin.post(
            f"/packages/{world.package['id']}/programs",
            json={"name": "install", "command_line": "sh setup.sh"},
        ),
        201,
    )
    world.collection = ok(admin.post("/collections", json={"name": f"{tag}-col"}), 201)
    world.advertisement = ok(
        admin.post(
            "/advertisements",
            json={
                "name": f"{tag}-adv",
                "package_id": world.package["id"],
                "program_name": "install",
                "collection_id": world.collection["id"],
                "protected_only": protected_only,
            },
        ),
        201,
    )
    ok(
        admin.post(
            f"/packages/{world.package['id']}/distribution-points",
            json={"dp_id": world.standard_dp["id"]},
        ),
        201,
    )
    return world


@contextmanager
def two_site_processes(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[SiteProcess, SiteProcess]]:
    """Two site-server processes on one PostgreSQL database (a schema of their own) and one
    data directory (one signing key), as several site servers are deployed."""
    with pg_schema("s") as url, contextlib.ExitStack() as servers:
        first = start_site(tmp_path / "site", url, extra_env=extra_env)
        servers.callback(first.stop)
        second = start_site(tmp_path / "site", url, extra_env=extra_env)
        servers.callback(second.stop)
        second.admin_token = first.admin_token
        yield first, second

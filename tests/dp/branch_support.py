"""A small site for branch DP and client tests, built through the real admin API, with
real agent processes (tests.machine.support starts them).

The standard DP here is a content server over a prepared store (create_content_app in a
uvicorn thread) registered as a DP row with its URL and reported `installed` by a
standard_dp credential: enough for the branch DP to pull from and clients to download from.
"""

from __future__ import annotations

import itertools
import random
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from peerdp.content.manifest import Manifest
from peerdp.content.objects import ObjectStore
from peerdp.dp.routes import create_content_app
from peerdp.machine.mp_client import MachineFacts, MPClient, enrol
from peerdp.security.signing import SitePublicKey
from tests.dp.directory_source import DirectoryContentSource
from tests.dp.support import free_port, start_uvicorn, stop_uvicorn
from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess
from tests.machine.support import AgentProcess, start_agent

_NETS = itertools.count(random.randint(0, 40_000))
HQ_NET = "192.168.251"


# -- the standard DP -----------------------------------------------------------------


@dataclass
class StandardDP:
    """A content server over a prepared directory store, known to the site as a DP."""

    root: Path
    url: str
    running: Any

    @classmethod
    def start(cls, root: Path, public_key: SitePublicKey) -> StandardDP:
        ObjectStore(root)
        app = create_content_app(DirectoryContentSource(root), public_key)
        port = free_port()
        return cls(root, f"http://127.0.0.1:{port}", start_uvicorn(app, port))

    def hold(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        store = ObjectStore(self.root)
        for data in files.values():
            store.add_stream([data])
        folder = self.root / "manifests" / manifest.package_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{manifest.source_version}.json").write_bytes(manifest.to_bytes())

    def corrupt(self, sha256: str) -> None:
        """Flip the first byte of a held file (same size, wrong SHA-256)."""
        path = self.root / "objects" / sha256[:2] / sha256
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.chmod(0o644)
        path.write_bytes(bytes(data))

    def stop(self) -> None:
        stop_uvicorn(self.running)


# -- the world ----------------------------------------------------------------------------


@dataclass
class World:
    """A head office with a standard DP; a branch with a protected branch DP; one package."""

    site: SiteProcess
    admin: httpx.Client
    tmp: Path
    net: str
    tag: str
    files: dict[str, bytes]
    out: Path
    standard: StandardDP | None = None
    package: dict[str, Any] = field(default_factory=dict)
    manifest: Manifest | None = None
    advertisement: dict[str, Any] = field(default_factory=dict)
    standard_dp: dict[str, Any] = field(default_factory=dict)
    branch_dp: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)
    standard_mp: MPClient | None = None
    agents: list[AgentProcess] = field(default_factory=list)

    @property
    def package_id(self) -> str:
        return str(self.package["id"])

    @property
    def version(self) -> int:
        return int(self.package["source_version"])

    def token(self, role: str, dp_id: int | None = None, max_uses: int = 1) -> str:
        body: dict[str, Any] = {"role": role, "max_uses": max_uses}
        if dp_id is not None:
            body["dp_id"] = dp_id
        return str(ok(self.admin.post("/enrolment-tokens", json=body), 201)["token"])

    # -- agents ---------------------------------------------------------------------

    def branch_args(self, data_dir: Path, *extra: str, token: bool = True) -> list[str]:
        args = ["--site", self.site.url, "--data-dir", str(data_dir)]
        if token:
            args += ["--token", self.token("branch_dp", self.branch_dp["id"])]
        args += ["--name", f"{self.tag}-br-dp", "--ip-address", f"{self.net}.5"]
        return [*args, "--retry-base", "0.3", "--poll-interval", "10", *extra]

    def start_branch(self, data_dir: Path, *extra: str, token: bool = True) -> AgentProcess:
        branch = start_agent("branch", self.branch_args(data_dir, *extra, token=token))
        self.agents.append(branch)
        return branch

    def client_args(self, name: str, data_dir: Path, host: int = 20) -> list[str]:
        args = ["--site", self.site.url, "--data-dir", str(data_dir), "--name", name]
        if not (data_dir / "identity.json").exists():
            args += ["--token", self.token("client")]
        return [*args, "--ip-address", f"{self.net}.{host}", "--once"]

    def add_member(self, name: str) -> None:
        ok(
            self.admin.post(
                f"/collections/{self.collection['id']}/members", json={"member_names": [name]}
            )
        )

    def access_token(self) -> str:
        """A content access token, as a client in the branch gets from the MP."""
        name = unique(f"{self.tag}-probe")
        self.add_member(name)
        facts = MachineFacts(name, (f"{self.net}.99",), None)
        identity = enrol(self.site.url, self.token("client"), facts, self.tmp / name)
        mp = MPClient(identity)
        try:
            answer = mp.content_location(
                int(self.advertisement["id"]),
                self.package_id,
                self.version,
                facts.ip_addresses,
                None,
            )
        finally:
            mp.close()
        return str(answer["distribution_points"][0]["access_token"])

    # -- the site's view -------------------------------------------------------------

    def dp_row(self, dp_id: int) -> dict[str, Any] | None:
        rows = ok(self.admin.get(f"/packages/{self.package_id}/distribution-points"))
        return next((row for row in rows if row["dp_id"] == dp_id), None)

    def branch_row(self) -> dict[str, Any] | None:
        return self.dp_row(int(self.branch_dp["id"]))

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        params = {"package_id": self.package_id, **filters}
        rows: list[dict[str, Any]] = ok(self.admin.get("/status-messages", params=params))
        return rows

    def typed(self, type_: str, **filters: Any) -> list[dict[str, Any]]:
        return [m for m in self.messages(**filters) if m["type"] == type_]

    def wait_branch_state(self, state: str, timeout: float = 30) -> dict[str, Any]:
        return dict(
            wait_for(
                f"branch DP row {state}",
                lambda: (row := self.branch_row()) and row["state"] == state and row,
                timeout,
            )
        )

    def close(self) -> None:
        for agent in self.agents:
            agent.stop(signal.SIGKILL)
        if self.standard is not None:
            self.standard.stop()
        if self.standard_mp is not None:
            self.standard_mp.close()
        self.admin.close()


def build(
    site: SiteProcess,
    tmp: Path,
    *,
    files: dict[str, bytes] | None = None,
    protected_only: bool = True,
    allow_remote: bool = False,
    on_slow: str = "do_not_run",
    corrupt: str | None = None,
    real_standard_dp: bool = False,
    command_line: str | None = None,
) -> World:
    """Boundaries, a standard DP holding the package, a protected branch DP, an advertisement.

    The program copies `payload.txt` to `world.out`. `corrupt` names a file the standard
    DP serves with a wrong byte. With `real_standard_dp` the standard DP is a `peerdp dp
    serve` process that the site's distribution manager pushes the package to.
    """
    admin = site.admin()
    tag = unique("a")
    n = next(_NETS)
    net = f"10.{60 + n // 250 % 190}.{n % 250}"
    files = {"payload.txt": f"payload of {tag}\n".encode(), **(files or {})}
    out = tmp / f"{tag}.out"
    world = World(site, admin, tmp, net, tag, files, out)
    command_line = command_line or f"cp payload.txt '{out}'"
    _topology(world, command_line, protected_only=protected_only, allow_remote=allow_remote,
              on_slow=on_slow)  # fmt: skip
    if real_standard_dp:
        _real_standard_dp(world)
    else:
        _standard_dp(world, corrupt)
    return world


def _topology(
    world: World, command_line: str, *, protected_only: bool, allow_remote: bool, on_slow: str
) -> None:
    admin, tag = world.admin, world.tag
    ok(admin.post("/boundaries", json={
        "name": f"{tag}-hq", "type": "ip_subnet", "value": f"{HQ_NET}.0/24"}), 201)  # fmt: skip
    branch = ok(admin.post("/boundaries", json={
        "name": f"{tag}-br", "type": "ip_subnet", "value": f"{world.net}.0/24"}), 201)  # fmt: skip
    world.standard_dp = ok(admin.post("/distribution-points", json={
        "name": f"{tag}-std", "kind": "standard", "bits_enabled": True,
        "ip_addresses": [f"{HQ_NET}.5"]}), 201)  # fmt: skip
    world.branch_dp = ok(admin.post("/distribution-points", json={
        "name": f"{tag}-br-dp", "kind": "branch", "protected_boundary_ids": [branch["id"]],
        "ip_addresses": [f"{world.net}.5"]}), 201)  # fmt: skip
    world.package = ok(admin.post("/packages", json={"name": f"{tag}-pkg", "on_demand": True}), 201)
    version = ok(admin.post(f"/packages/{world.package_id}/versions", content=tar_of(world.files),
                            headers={"Content-Type": "application/x-tar"}), 201)  # fmt: skip
    world.package["source_version"] = version["source_version"]
    world.manifest = Manifest.from_json(version["manifest"])
    ok(admin.post(f"/packages/{world.package_id}/programs", json={
        "name": "install", "command_line": command_line}), 201)  # fmt: skip
    world.collection = ok(admin.post("/collections", json={"name": f"{tag}-col"}), 201)
    world.advertisement = ok(admin.post("/advertisements", json={
        "name": f"{tag}-adv", "package_id": world.package_id, "program_name": "install",
        "collection_id": world.collection["id"], "protected_only": protected_only,
        "allow_remote": allow_remote, "on_slow": on_slow}), 201)  # fmt: skip


def _standard_dp(world: World, corrupt: str | None) -> None:
    """Start the content server, register it with its URL, and report the package installed."""
    facts = MachineFacts(f"{world.tag}-std", (f"{HQ_NET}.5",), None)
    data_dir = world.tmp / f"{world.tag}-std"
    token = world.token("standard_dp", world.standard_dp["id"])
    root = data_dir / "store"
    # The URL is known only once the server runs, and the key only after enrolling: enrol
    # with a placeholder URL, start, then set the real URL through the admin API.
    identity = enrol(world.site.url, token, facts, data_dir, url="http://127.0.0.1:9")
    standard = world.standard = StandardDP.start(root, identity.public_key)
    ok(world.admin.patch(f"/distribution-points/{world.standard_dp['id']}",
                         json={"url": standard.url}))  # fmt: skip
    assert world.manifest is not None
    standard.hold(world.manifest, world.files)
    if corrupt is not None:
        standard.corrupt(next(f.sha256 for f in world.manifest.files if f.path == corrupt))
    ok(world.admin.post(f"/packages/{world.package_id}/distribution-points",
                        json={"dp_id": world.standard_dp["id"]}), 201)  # fmt: skip
    world.standard_mp = MPClient(identity)
    answer = world.standard_mp.status({
        "type": "package_state", "package_id": world.package_id,
        "source_version": world.version, "state": "installed"})  # fmt: skip
    assert answer["accepted"] == 1, answer


def _real_standard_dp(world: World) -> None:
    """`peerdp dp serve`, registered with its URL; the distribution manager pushes to it."""
    args = ["--site", world.site.url, "--data-dir", str(world.tmp / f"{world.tag}-std")]
    args += ["--token", world.token("standard_dp", world.standard_dp["id"])]
    args += ["--name", f"{world.tag}-std", "--ip-address", f"{HQ_NET}.5"]
    world.agents.append(start_agent("dp", args))
    ok(world.admin.post(f"/packages/{world.package_id}/distribution-points",
                        json={"dp_id": world.standard_dp["id"]}), 201)  # fmt: skip
    wait_for(
        "the standard DP to hold the package",
        lambda: (row := world.dp_row(world.standard_dp["id"])) and row["state"] == "installed",
    )


def worlds(site: SiteProcess, tmp: Path) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(**kwargs: Any) -> World:
        world = build(site, tmp, **kwargs)
        made.append(world)
        return world

    yield make
    for world in made:
        world.close()

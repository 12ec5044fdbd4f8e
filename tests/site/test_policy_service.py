"""The policy service against each database: versions grow only with content, a quiet
recomputation writes nothing, clients in one collection share what was read for it, and
a restarted site knows every client's policy from a few queries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from peerdp.config import SiteSettings
from peerdp.site.app import open_site
from peerdp.site.context import SiteContext
from peerdp.site.mp import policy_inputs as inputs
from peerdp.site.mp.identity import Caller
from peerdp.site.mp.management_point import ManagementPoint
from peerdp.site.mp.policy_service import POLICY_COMPUTATIONS, PolicyService, PolicyState
from peerdp.store.models import Advertisement, PolicyVersion, Program
from tests.site.mp_seed import Shape, seed

CLIENTS = 5
SITE = Shape(boundaries=1, branches=1, standard_dps=1, packages=3, clients=CLIENTS)


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[SiteContext]:
    ctx = open_site(SiteSettings(data_dir=tmp_path, db=db_url))
    ctx.mp = ManagementPoint.open(ctx)
    with ctx.transaction() as s:
        seed(s, SITE, lambda i: f"pdm_policy-{i}")
    try:
        yield ctx
    finally:
        ctx.mp.close()
        ctx.db.dispose()


def client(i: int) -> Caller:
    return Caller(f"m{i}", "client", f"pc{i}", i + 1, None)


def reads(what: str) -> float:
    return POLICY_COMPUTATIONS.labels(what)._value.get()


def stored_versions(ctx: SiteContext) -> dict[str, int]:
    with ctx.db.reading() as s:
        return dict(s.execute(select(PolicyVersion.machine_id, PolicyVersion.version)).all())


def change_program(ctx: SiteContext, command_line: str) -> None:
    with ctx.transaction() as s:
        program = s.scalars(select(Program).order_by(Program.id)).first()
        assert program is not None
        program.command_line = command_line
        ctx.changes.publish(s, concerns=[inputs.package(program.package_id)])


def test_clients_of_one_collection_share_one_read(ctx: SiteContext) -> None:
    collections, shared = reads("collections"), reads("shared")
    states = [ctx.mp.policy.compute(client(i)) for i in range(CLIENTS)]
    assert reads("collections") == collections + 1
    assert reads("shared") == shared + 1
    assert len({id(state.body) for state in states}) == 1  # one body, in memory once
    assert [len(state.body["advertisements"]) for state in states] == [3] * CLIENTS
    assert stored_versions(ctx) == {f"m{i}": 1 for i in range(CLIENTS)}


def test_a_version_grows_only_when_the_content_changes(ctx: SiteContext) -> None:
    service = ctx.mp.policy
    first = service.compute(client(0))
    assert service.known(client(0)) is first  # nothing changed: from memory

    ctx.changes.bump(concerns={inputs.collection(99)})  # a change it does not read
    assert service.known(client(0)) is first

    ctx.changes.bump(concerns={inputs.collection(1)})  # one it reads, content the same
    assert service.known(client(0)) is None
    again = service.compute(client(0))
    assert again.version == first.version

    change_program(ctx, "install.cmd /quiet")
    assert service.known(client(0)) is None
    changed = service.compute(client(0))
    assert changed.version == first.version + 1
    assert stored_versions(ctx)["m0"] == changed.version


def test_a_policy_changed_while_the_site_was_down_is_read_again(ctx: SiteContext) -> None:
    versions = {i: ctx.mp.policy.compute(client(i)).version for i in range(CLIENTS)}
    with ctx.transaction() as s:  # while the site is "down", one advertisement goes
        advertisement = s.get(Advertisement, 3)
        assert advertisement is not None
        s.delete(advertisement)

    restarted = PolicyService(ctx)
    assert restarted.warm() == 0  # no stored digest matches what the clients read now
    assert restarted.known(client(0)) is None
    fresh = restarted.compute(client(0))
    assert len(fresh.body["advertisements"]) == 2
    assert fresh.version == versions[0] + 1


def test_a_restarted_site_takes_unchanged_policies_as_they_are(ctx: SiteContext) -> None:
    versions = {i: ctx.mp.policy.compute(client(i)).version for i in range(CLIENTS)}
    restarted = PolicyService(ctx)
    collections = reads("collections")
    assert restarted.warm() == CLIENTS
    assert reads("collections") == collections + 1  # every collection in one query
    for i in range(CLIENTS):
        state = restarted.known(client(i))
        assert state is not None and state.version == versions[i]


def test_a_body_read_once_after_a_change_serves_every_client(ctx: SiteContext) -> None:
    for i in range(CLIENTS):
        ctx.mp.policy.compute(client(i))
    change_program(ctx, "setup.exe /S")
    shared = reads("shared")
    states = [ctx.mp.policy.compute(client(i)) for i in range(CLIENTS)]
    assert reads("shared") == shared + 1
    assert {state.version for state in states} == {2}


def test_a_batch_is_read_in_one_session_and_written_in_one_transaction(
    ctx: SiteContext,
) -> None:
    transactions: list[object] = []
    for engine in {ctx.db.engine, ctx.db.read_engine}:  # SQLite reads on an engine of its own
        event.listen(engine, "begin", transactions.append)
    results = ctx.mp.policy.compute_many([client(i) for i in range(CLIENTS)])
    assert len(transactions) == 2  # one to read them all, one to write every version
    assert [r.version for r in results if isinstance(r, PolicyState)] == [1] * CLIENTS


def test_a_machine_that_fails_in_a_batch_fails_alone(ctx: SiteContext) -> None:
    gone = Caller("m-deleted", "client", "pc-deleted", 999, None)  # no machine row
    results = ctx.mp.policy.compute_many([client(0), gone, client(1)])
    assert isinstance(results[1], IntegrityError)
    assert [r.version for r in (results[0], results[2]) if isinstance(r, PolicyState)] == [1, 1]
    assert stored_versions(ctx) == {"m0": 1, "m1": 1}
    with pytest.raises(IntegrityError):
        ctx.mp.policy.compute(gone)


def test_machines_asking_at_once_are_read_in_one_batch_each_once(ctx: SiteContext) -> None:
    service = ctx.mp.policy
    batches: list[int] = []
    read = service.compute_many

    def counted(callers: Sequence[Caller]) -> list[PolicyState | Exception]:
        batches.append(len(callers))
        return read(callers)

    service.compute_many = counted  # type: ignore[method-assign]

    async def ask() -> list[PolicyState]:  # every machine three times, all at once
        return await asyncio.gather(*(service.state(client(i % CLIENTS)) for i in range(15)))

    states = asyncio.run(ask())
    assert batches == [CLIENTS]
    assert all(states[i] is states[i % CLIENTS] for i in range(15))
    assert stored_versions(ctx) == {f"m{i}": 1 for i in range(CLIENTS)}

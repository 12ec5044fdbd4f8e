"""`deployment_states` written by the upsert, on SQLite and PostgreSQL: the newest report
wins, in one statement per batch, whatever order reports arrive or are batched in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from peerdp.domain.deployment_states import Derived
from peerdp.site.deployment_status import Report, upsert
from peerdp.site.status_batch import _insert_messages
from peerdp.store.db import Database, upgrade
from peerdp.store.models import Advertisement, Collection, DeploymentStateRow, Package

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database.engine)
    with database.transaction() as s:
        s.add(Package(id="PS100001", name="p", source_version=2))
        s.add(Collection(id=1, name="c"))
        s.flush()
        s.add(
            Advertisement(id=1, name="a", package_id="PS100001", program_name="i", collection_id=1)
        )
    yield database
    database.dispose()


def _report(client: str, state: str, at_s: float, version: int = 1, **more: object) -> Report:
    return Report(1, client, version, T0 + timedelta(seconds=at_s), Derived(state), **more)  # type: ignore[arg-type]


def _rows(db: Database) -> dict[str, tuple[str, int, int | None, int | None]]:
    with db.reading() as s:
        rows = s.scalars(select(DeploymentStateRow))
        return {
            r.client_name: (r.state, r.source_version, r.source_dp_id, r.boundary_id) for r in rows
        }


def test_the_newest_report_wins_in_a_batch_and_across_batches(db: Database) -> None:
    with db.transaction() as s:
        upsert(
            s,
            [
                _report("PC1", "running", 3),
                _report("PC1", "downloading", 1, source_dp_id=7, boundary_id=4),
                _report("PC2", "policy_received", 0),
            ],
        )
    assert _rows(db) == {
        "PC1": ("running", 1, None, 4),
        "PC2": ("policy_received", 1, None, None),
    }
    with db.transaction() as s:
        upsert(s, [_report("PC3", "running", 3)])
    with db.transaction() as s:
        upsert(s, [_report("PC3", "downloading", 2, source_dp_id=7, boundary_id=5)])
    assert _rows(db)["PC3"] == ("running", 1, None, 5), "an older report tells only the boundary"
    with db.transaction() as s:
        upsert(s, [_report("PC1", "succeeded", 5), _report("PC2", "failed", 1, version=2)])
        upsert(s, [_report("PC2", "succeeded", 9, version=1)])
    assert _rows(db)["PC1"] == ("succeeded", 1, None, 4)
    assert _rows(db)["PC2"] == ("failed", 2, None, None)


def test_source_dp_and_boundary_are_kept_while_they_matter(db: Database) -> None:
    with db.transaction() as s:
        upsert(s, [_report("PC1", "downloading", 1, source_dp_id=7, boundary_id=4)])
    with db.transaction() as s:
        upsert(s, [_report("PC1", "running", 2)])
    assert _rows(db)["PC1"] == ("running", 1, 7, 4)
    with db.transaction() as s:
        upsert(s, [_report("PC1", "policy_received", 3, version=2)])
    assert _rows(db)["PC1"] == ("policy_received", 2, None, 4), "a new version has no source yet"


def test_reports_about_an_advertisement_that_is_gone_are_dropped(db: Database) -> None:
    with db.transaction() as s:
        upsert(s, [Report(99, "PC1", 1, T0, Derived("running")), _report("PC2", "running", 0)])
    assert set(_rows(db)) == {"PC2"}


def test_the_mps_batched_answers_move_deployments_with_their_messages(db: Database) -> None:
    now = datetime.now(UTC)
    base = {
        "at": now,
        "received_at": now,
        "severity": "info",
        "detail": "",
        "component": "mp",
        "source": "PS1",
        "type": "content_location",
        "advertisement_id": 1,
        "package_id": "PS100001",
        "source_version": 1,
    }
    rows = [
        {**base, "client_name": f"PC{i}", "state": None, "source_dp_id": 3, "boundary_id": 8}
        for i in range(5)
    ]
    rows.append({**base, "client_name": "PC9", "state": "on_demand_triggered"})
    rows.append({**base, "client_name": "PC8", "state": "not_targeted"})
    with db.transaction() as s:
        _insert_messages(s, rows)
    states = _rows(db)
    assert states["PC0"] == ("downloading", 1, 3, 8)
    assert states["PC9"] == ("waiting_for_content", 1, None, None)
    assert "PC8" not in states, "a client not targeted has no deployment"
    assert len(states) == 6

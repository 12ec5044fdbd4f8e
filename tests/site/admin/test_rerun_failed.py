"""`POST /advertisements/{id}/rerun` with `failed`: one rerun for each client of the
collection the advertisement failed on, in one request (in-process, on each database)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import delete, select

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from peerdp.store.models import (
    AdvertisementRerun,
    CollectionMember,
    DeploymentStateRow,
    StatusMessage,
    utcnow,
)
from tests.helpers.asgi import asgi_request
from tests.site.mp_seed import Shape, seed

ADMIN = {"Authorization": "Bearer secret"}


def _app(tmp_path: Path, db_url: str) -> FastAPI:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    app = create_app(SiteSettings.model_validate(settings))
    with app.state.site.transaction() as s:
        seed(s, Shape(boundaries=1, branches=1, standard_dps=1, packages=1, clients=600), str)
    return app


def _rerun(app: FastAPI, body: object) -> tuple[int, dict[str, object]]:
    answer = asgi_request(app, "POST", "/api/v1/advertisements/1/rerun", ADMIN, json=body)
    return answer.status_code, answer.json()


def test_a_rerun_on_the_failed_clients_reruns_each_once(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url)
    status, none = _rerun(app, {"failed": True})
    assert status == 409 and "has failed on no client of collection 1" in str(none["detail"])
    with app.state.site.transaction() as s:
        s.add_all(
            DeploymentStateRow(
                advertisement_id=1,
                client_name=f"pc{i}",
                state="failed" if i % 2 else "succeeded",
                source_version=1,
                at=utcnow(),
            )
            for i in range(600)
        )
        # pc1 failed, then left the collection: no longer offered it, not rerun.
        s.execute(delete(CollectionMember).where(CollectionMember.machine_name == "pc1"))
    status, done = _rerun(app, {"failed": True})
    assert status == 201 and done["failed_clients"] == 299 and done["client_name"] is None
    with app.state.site.db.reading() as s:
        reruns = list(s.execute(select(AdvertisementRerun.id, AdvertisementRerun.client_name)))
        [message] = s.scalars(
            select(StatusMessage).where(StatusMessage.type == "advertisement_rerun")
        )
    assert sorted(name for _, name in reruns) == sorted(f"pc{i}" for i in range(3, 600, 2))
    assert done["id"] == max(i for i, _ in reruns)
    assert "the 299 client(s) it failed on" in message.detail

    status, both = _rerun(app, {"failed": True, "client_name": "pc3"})
    assert status == 422 and "not both" in str(both["detail"])
    assert _rerun(app, {"failed": "perhaps"})[0] == 422

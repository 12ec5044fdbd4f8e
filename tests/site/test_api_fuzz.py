"""Every operation of the site's OpenAPI document, fed generated and malformed input by
schemathesis, against a real site server on SQLite and PostgreSQL: no answer is a 5xx, and
every refusal carries a `detail` that says what is wrong."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # fuzzes the API of a real site server

# The same inputs every run, so the suite is repeatable; PEERDP_FUZZ_RANDOM=1 and a larger
# PEERDP_FUZZ_EXAMPLES explore further (60 a run found nothing on 2026-11-25).
EXAMPLES = int(os.environ.get("PEERDP_FUZZ_EXAMPLES", "12"))  # per operation and mode
RANDOM = bool(os.environ.get("PEERDP_FUZZ_RANDOM"))


@schemathesis.serializer("application/x-tar")
def _tar_body(_context: Any, value: Any) -> bytes:
    """Package uploads are tar archives: send whatever was generated as raw bytes (almost
    never a valid archive, which is the point)."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def client_credential(site_server: SiteProcess) -> str:
    admin = site_server.admin()
    token = admin.post("/enrolment-tokens", json={"role": "client", "max_uses": 1}).json()
    answer = httpx.post(
        site_server.url + "/mp/v1/register",
        json={"token": token["token"], "name": unique("FUZZ-PC"), "ip_addresses": ["10.9.9.9"]},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["credential"])


@pytest.fixture(scope="module")
def api(site_server: SiteProcess, client_credential: str) -> Any:
    schema = schemathesis.openapi.from_url(site_server.url + "/openapi.json")
    # A policy long-poll may wait an hour by design; it has tests of its own.
    return schema.exclude(path="/mp/v1/policy")


def _fuzz(operation: Any, base_url: str, secret: str, mode: schemathesis.GenerationMode) -> None:
    """Generated cases for one operation: no 5xx; a 4xx says why in `detail`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {secret}"})
        case.validate_response(response, checks=[not_a_server_error])
        if 400 <= response.status_code < 500 and response.status_code != 405:
            detail = response.json().get("detail")
            assert isinstance(detail, str) and detail, response.text

    try:
        check()
    except Unsatisfiable:
        assert mode is schemathesis.GenerationMode.NEGATIVE  # nothing in it can be made invalid


def test_no_server_error_and_every_refusal_says_why(
    api: Any, site_server: SiteProcess, client_credential: str
) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 40  # the admin API and the MP, all of them
    for operation in operations:
        mp = operation.path.startswith("/mp/")
        secret = client_credential if mp else site_server.admin_token
        for mode in schemathesis.GenerationMode:  # input that fits the schema, and that does not
            _fuzz(operation, site_server.url, secret, mode)

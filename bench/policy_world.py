"""The policy benchmark's site: the MP benchmark's 100,000 clients with realistic policies.

On top of `tests.site.mp_seed` (10,000 boundaries, 2,000 branch DPs, 50 standard DPs,
1,000 packages each with a program and source version 1, 100,000 clients `pc<i>` holding
credential `pdm_bench_<i>`, all in collection 1 "all"), the 1,000 advertisements are
spread over 200 collections and every client joins three of them, so a client's policy
holds about ten advertisements instead of all 1,000:

- collection `c<k>` (id 2 + k, k < 200) holds the clients i with k in
  {i mod 200, (i + 67) mod 200, (i + 133) mod 200}: three distinct collections each;
- advertisement p + 1 (p < 700) targets `c<p mod 200>`: 3 or 4 per collection, so
  10 or 11 per client; advertisements 701..1000 target `lab`, a collection without members;
- `hundred` holds pc0..pc99 only, for a change that concerns exactly 100 clients.

Everything goes in through the models in bulk, in one transaction.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import text, update

from peerdp.store.db import Database, upgrade
from peerdp.store.models import Advertisement, Collection, CollectionMember, Site

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*
from tests.site.mp_seed import Shape, package_id, seed

CLIENTS = 100_000
SHAPE = Shape(boundaries=10_000, branches=2_000, standard_dps=50, packages=1_000, clients=CLIENTS)
ALL_ID = 1  # mp_seed's collection of every client
COLLECTIONS = 200
FIRST_COLLECTION_ID = 2
MEMBERSHIP_OFFSETS = (0, 67, 133)  # distinct modulo 200: three collections per client
ADVERTISED = 700  # advertisements placed on the 200 collections; the rest on `lab`
HUNDRED_ID = FIRST_COLLECTION_ID + COLLECTIONS
LAB_ID = HUNDRED_ID + 1
HUNDRED = range(100)  # the clients of `hundred`


def credential(i: int) -> str:
    return f"pdm_bench_{i}"


def collections_of(i: int) -> list[int]:
    """The ids of the three bench collections client `i` belongs to."""
    return [FIRST_COLLECTION_ID + (i + d) % COLLECTIONS for d in MEMBERSHIP_OFFSETS]


def advertisement_collection(p: int) -> int:
    return FIRST_COLLECTION_ID + p % COLLECTIONS if p < ADVERTISED else LAB_ID


@dataclass(frozen=True)
class LocationProbe:
    """A content-location request a client may make: one of its own advertisements, from
    the branch whose DP holds the package."""

    client: int
    body: dict[str, object]


def location_probe(i: int) -> LocationProbe:
    p = (i + MEMBERSHIP_OFFSETS[0]) % COLLECTIONS  # advertisement p + 1 targets c<i mod 200>
    branch = p % SHAPE.branches
    body = {
        "advertisement_id": p + 1,
        "package_id": package_id(p),
        "source_version": 1,
        "ip_addresses": [f"10.{branch // 250}.{branch % 250}.20"],
    }
    return LocationProbe(i, body)


def populate(url: str) -> None:
    """Fill the (empty) site database at `url`."""
    db = Database(url)
    upgrade(db.engine)
    with db.transaction() as s:
        s.add(Site(code=SHAPE.site_code, name="bench"))
        s.flush()
        seed(s, SHAPE, credential)
        s.add_all(
            [Collection(id=FIRST_COLLECTION_ID + k, name=f"c{k}") for k in range(COLLECTIONS)]
            + [Collection(id=HUNDRED_ID, name="hundred"), Collection(id=LAB_ID, name="lab")]
        )
        s.flush()
        s.bulk_insert_mappings(
            CollectionMember,
            [
                {"collection_id": c, "machine_name": f"pc{i}"}
                for i in range(CLIENTS)
                for c in collections_of(i)
            ]
            + [{"collection_id": HUNDRED_ID, "machine_name": f"pc{i}"} for i in HUNDRED],
        )
        for p in range(SHAPE.packages):
            s.execute(
                update(Advertisement)
                .where(Advertisement.id == p + 1)
                .values(collection_id=advertisement_collection(p))
            )
    if db.engine.dialect.name == "postgresql":
        advance_id_sequences(db)
    db.dispose()


SEEDED_WITH_IDS = ("boundaries", "distribution_points", "collections", "advertisements", "clients")


def advance_id_sequences(db: Database) -> None:
    """The seed gives ids itself, so PostgreSQL's id sequences are still at 1: move them
    past the rows, or the admin API's first new boundary would collide with boundary 1."""
    with db.engine.begin() as conn:
        for table in SEEDED_WITH_IDS:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def new_pg_schema(base: str) -> str:
    schema = f"bench_policy_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def drop_pg_schema(base: str, schema: str) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

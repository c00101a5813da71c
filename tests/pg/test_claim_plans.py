"""The claims run on their generic plan: asyncpg prepares them once per connection, and
PostgreSQL must not re-plan them on every call (it would, left to choose: the generic estimate
of ``wake_at <= $now`` looks costlier than each call's custom plan). Which indexes the generic
plans use is checked in test_explain.py."""

from __future__ import annotations

import time
from typing import Any

import pytest

from perdure.storage.postgres.adapter import PostgresStorage
from tests.pg.conftest import Database

pytestmark = pytest.mark.postgres

KEYS = ["wf\x1f1"]


async def _plans(store: PostgresStorage, marker: str) -> list[tuple[int, int]]:
    """(generic, custom) plan counts of the prepared statements holding ``marker``, on the
    pool's one connection."""
    conn = await store._pool.acquire()
    try:
        rows = await conn.fetch("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                "WHERE statement LIKE $1", f"%{marker}%")
    finally:
        store._pool.release(conn)
    return [(r["generic_plans"], r["custom_plans"]) for r in rows]


@pytest.mark.parametrize("flow", [False, True], ids=["plain", "with-queues"])
async def test_the_claim_is_planned_once_not_on_every_call(db: Database, flow: bool) -> None:
    store = PostgresStorage(db.url + "?pool_size=1")
    await store.open()
    try:
        for _ in range(12):
            now = time.time()
            if flow:
                await store.claim_flow(worker="w", keys=KEYS, queues=["q"], caps=[], limit=64,
                                       clock=time.time, lease=10, plain=True)
            else:
                await store.claim(worker="w", keys=KEYS, limit=64, now=now,
                                  lease_until=now + 10)
        plans: list[Any] = await _plans(store, "FOR UPDATE SKIP LOCKED\n), lapsed AS")
        assert len(plans) == 1
        [(generic, custom)] = plans
        assert custom == 0 and generic == 12, plans
    finally:
        await store.close()

"""Plan regression for the outbox: with 200,000 events waiting, the publisher's queries are
served by their indexes, never by a scan of the backlog."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import PgCluster
from tests.pg.test_explain import _plan

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]

EVENTS = 200_000

# 2,000 keys with 99 events each, their heads ready (a tenth of them in back-off), and 2,000
# events without a key; everything else waits behind its key's head.
FILL = """
INSERT INTO perdure_outbox (id, run_id, seq, name, key, payload, created_at, ready_at)
SELECT 'r' || g || ':0', 'r' || g, 0, 'e', CASE WHEN g % 100 <> 0 THEN 'k' || (g % 2000) END,
       '{}', $1::float8 - g,
       CASE WHEN g % 100 = 0 THEN $1::float8 - g
            WHEN g <= 2000 THEN $1::float8 + (g % 10) * 60 END
FROM generate_series(1, $2::int) AS g
"""


@pytest.fixture(scope="module")
def outbox_db(pg: PgCluster) -> Iterator[str]:
    name = pg.new_database()
    try:
        yield pg.url(name)
    finally:
        pg.drop(name)


@pytest.fixture
async def conn(outbox_db: str) -> AsyncIterator[Any]:
    import asyncpg

    c = await asyncpg.connect(outbox_db)
    try:
        if await c.fetchval("SELECT count(*) FROM perdure_outbox") == 0:
            await c.execute(FILL, time.time(), EVENTS)
            await c.execute("ANALYZE perdure_outbox")
        yield c
    finally:
        await c.close()


def _check(nodes: list[dict[str, Any]], index: str) -> None:
    scans = [(n["Node Type"], n.get("Index Name"), n.get("Relation Name")) for n in nodes]
    assert not [s for s in scans if s[0] == "Seq Scan" and s[2] == "perdure_outbox"], scans
    used = {s[1] for s in scans if s[0] in ("Index Scan", "Index Only Scan",
                                             "Bitmap Index Scan")}
    assert index in used, f"{index} not used: {scans}"


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_finding_work_reads_the_ready_index(conn: Any, generic: bool) -> None:
    nodes = await _plan(conn, "outbox_due", {"limit": 65, "busy": ["r1:0", "r2:0"]},
                        generic=generic)
    _check(nodes, "perdure_outbox_ready")


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_promoting_a_head_reads_the_key_index(conn: Any, generic: bool) -> None:
    nodes = await _plan(conn, "outbox_promote", {"keys": ["k7", "k8"], "emptied": [],
                                                 "now": time.time()}, generic=generic)
    _check(nodes, "perdure_outbox_key")


@pytest.mark.parametrize("name", ["outbox_delivered", "outbox_bury", "outbox_retry"])
async def test_acknowledgements_find_events_by_id(conn: Any, name: str) -> None:
    nodes = await _plan(conn, name, {"worker": "w", "term": 1, "ids": ["r5:0", "r6:0"],
                                     "id": "r5:0", "attempts": 1, "error": "e",
                                     "next_at": time.time(), "now": time.time()},
                        generic=True)
    _check(nodes, "perdure_outbox_id_key")

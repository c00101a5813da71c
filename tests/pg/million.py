"""The million-run database of the PostgreSQL plan-regression tests (tests/pg/test_explain*.py),
built once per session and shared by them (``million_runs`` in tests/pg/conftest.py).

Why a million: the claim is that the hot queries stay on their indexes at production size, as
a custom plan and as a prepared statement's generic plan; the generic plan and the "is it
fast" bounds depend on the table's real size, so the table keeps it. Building it is the cost:
one ``INSERT ... SELECT generate_series`` per table, with the secondary indexes dropped during
the load and created again afterwards (several times faster than maintaining them row by row;
the plans see the very same indexes), then ANALYZE.
"""

from __future__ import annotations

import time
from typing import Any

ROWS = 1_000_000
KEYS = ["wf0\x1f1", "wf1\x1f1", "wf2\x1f1"]

# The plain runs as before, and 30,000 more for flow control, in three queues: parked with a
# due time (45 %), in their line (50 %) or running (5 %), with a partition key among 1,000 and
# some with a routing selector. Every 50th run (of either kind) is a child of the plain run
# before it.
FILL = """
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, epoch, owner,
                          lease_until, wake_at, created_at, updated_at, cancel_requested,
                          parent_id)
SELECT 'r' || g, 'wf' || (g % 3), '1', 'wf' || (g % 3) || chr(31) || '1', s.status, '[]', 1,
       CASE WHEN s.status = 'running' THEN 'w' || (g % 20) END,
       CASE WHEN s.status = 'running' THEN $1 + (g % 60) - 5 END,
       CASE WHEN s.status = 'pending' THEN $1 - (g % 600)
            WHEN s.status = 'waiting' AND g % 4 <> 0 THEN $1 + (g % 86400) END,
       $1 - g, $1 - g, g % 1000 = 0 AND s.status = 'running',
       CASE WHEN g % 50 = 0 THEN 'r' || (g - 1) END
FROM generate_series(1, $2::int) AS g,
     LATERAL (SELECT CASE WHEN g % 100 < 90 THEN 'completed'
                          WHEN g % 100 < 96 THEN 'waiting'
                          WHEN g % 100 < 98 THEN 'pending'
                          ELSE 'running' END AS status) AS s;
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, epoch, owner,
                          lease_until, wake_at, created_at, updated_at, queue, partition_key,
                          vtime, requires, parent_id)
SELECT 'f' || g, 'wf' || (g % 3), '1', 'wf' || (g % 3) || chr(31) || '1', s.status, '[]', 1,
       CASE WHEN s.status = 'running' THEN 'w' || (g % 20) END,
       CASE WHEN s.status = 'running' THEN $1 + (g % 60) - 5 END,
       CASE WHEN s.status = 'waiting' THEN $1 + (g % 86400) END,
       $1 - g, $1 - g, 'q' || (g % 3), 'k' || (g % 1000), g,
       CASE WHEN g % 7 = 0 THEN ARRAY['gpu'] END,
       CASE WHEN g % 50 = 0 THEN 'r' || (g - 1) END
FROM generate_series(1, $2::int / 33) AS g,
     LATERAL (SELECT CASE WHEN g % 20 < 9 THEN 'waiting' WHEN g % 20 < 19 THEN 'pending'
                          ELSE 'running' END AS status) AS s;
INSERT INTO perdure_queues (name, concurrency, per_worker, per_key, rate_count, rate_per,
                            defined_at)
SELECT 'q' || i, 100000, 5000, 100, 1000, 60, 0 FROM generate_series(0, 2) AS i;
INSERT INTO perdure_limits (name, concurrency, rate_count, rate_per, defined_at)
VALUES ('gpu', 8, 100, 1, 0);
"""

# A customer tag on every run (shared by ten runs), a plan tag on every tenth run.
TAGS = """
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT 'r' || g, 'customer', 'c-' || (g % ($2::int / 10)), $1 - g
FROM generate_series(1, $2::int) AS g
UNION ALL
SELECT 'r' || g, 'plan', CASE WHEN g % 20 = 0 THEN 'pro' ELSE 'free' END, $1 - g
FROM generate_series(10, $2::int, 10) AS g
"""


async def fill(c: Any, now: float) -> None:
    """Insert the runs of ``FILL`` (its statements one by one: a prepared statement holds
    one)."""
    for statement in FILL.split(";")[:-1]:
        await (c.execute(statement, now, ROWS) if "$1" in statement else c.execute(statement))


async def build(url: str) -> None:
    """Fill the (migrated, empty) database at ``url``: runs (some children) and tags, analyzed."""
    import asyncpg

    c = await asyncpg.connect(url)
    try:
        started = time.monotonic()
        now = time.time()
        await c.execute("SET synchronous_commit = off")
        await c.execute("SET maintenance_work_mem = '256MB'")
        indexes = await c.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('perdure_runs', 'perdure_tags') AND indexname NOT LIKE '%pkey'")
        for index in indexes:
            await c.execute(f'DROP INDEX "{index["indexname"]}"')
        await fill(c, now)
        await c.execute(TAGS, now, ROWS)
        for index in indexes:
            await c.execute(index["indexdef"])
        await c.execute("ANALYZE perdure_runs")
        await c.execute("ANALYZE perdure_tags")
        print(f"\nfilled {ROWS} runs and {ROWS + ROWS // 10} tags in "
              f"{time.monotonic() - started:.1f} s")
    finally:
        await c.close()

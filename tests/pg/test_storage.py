"""The PostgreSQL adapter under concurrency: no lost wake-ups, fencing against a concurrent
claim, group commit, migrations racing, schemas and prefixes, push wake-ups, liveness.

Races are run for real: two storages (two pools, so two server sessions) issue the competing
statements at the same moment, many times over, with jitter so that both orders happen.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from perdure.errors import LeaseLost
from perdure.records import JournalEntry
from perdure.storage.port import NewRun
from perdure.storage.postgres.adapter import PostgresStorage
from perdure.storage.sqlfiles import migrations
from tests.pg.conftest import Database

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

KEY = "wf\x1f1"
ROUNDS = 60


@pytest.fixture
async def stores(db: Database) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """Two storages on one database: a worker's and another process's."""
    a, b = PostgresStorage(db.url), PostgresStorage(db.url)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _jitter(op: Awaitable[Any]) -> Any:
    await asyncio.sleep(random.random() * 0.002)
    return await op


async def _claimed(store: PostgresStorage, run_id: str, worker: str, **extra: Any) -> int:
    """Create ``run_id`` and claim it for ``worker``; its epoch."""
    now = time.time()
    await store.create_run(NewRun(run_id, "wf", "1", "[]", now, **extra))
    claimed = await store.claim(worker=worker, keys=[KEY], limit=100, now=now + 1,
                                lease_until=now + 60)
    [run] = [c for c in claimed if c.id == run_id]
    return run.epoch


async def test_a_signal_racing_a_park_is_never_lost(
        stores: tuple[PostgresStorage, PostgresStorage]) -> None:
    worker, client = stores
    for i in range(ROUNDS):
        run_id = f"sig-{i}"
        epoch = await _claimed(worker, run_id, "w")
        now = time.time()
        await asyncio.gather(
            _jitter(worker.park_run(run_id, epoch, "w", status="waiting", wake_at=None,
                                    now=now, waiting_for=["signal:go"])),
            _jitter(client.send_signal(run_id, "go", '"x"', None, now)))
        row = await client.get_run(run_id)
        assert row is not None and row.status == "waiting"
        # The signal is pending and the run waits for it: it must be runnable now.
        assert row.wake_at is not None and row.wake_at <= time.time(), (i, row)


async def test_a_child_finishing_while_its_parent_parks_wakes_the_parent(
        stores: tuple[PostgresStorage, PostgresStorage]) -> None:
    parent_store, child_store = stores
    for i in range(ROUNDS):
        parent, child = f"p-{i}", f"p-{i}/1"
        epoch = await _claimed(parent_store, parent, "wp")
        await parent_store.start_child(parent, epoch, "wp",
                                       JournalEntry(0, "child", "wf", "completed", 1, '"c"'),
                                       NewRun(child, "wf", "1", "[]", time.time(),
                                              parent_id=parent, parent_seq=0))
        now = time.time()
        claimed = await child_store.claim(worker="wc", keys=[KEY], limit=10, now=now + 1,
                                          lease_until=now + 60)
        [c] = [c for c in claimed if c.id == child]
        await asyncio.gather(
            _jitter(parent_store.park_run(parent, epoch, "wp", status="waiting", wake_at=None,
                                          now=now, waiting_for=[f"child:{child}"])),
            _jitter(child_store.finish_run(child, c.epoch, "wc", status="completed",
                                           output="1", error=None, now=now)))
        row = await parent_store.get_run(parent)
        assert row is not None and row.wake_at is not None and row.wake_at <= time.time(), \
            (i, row)


async def test_a_cancel_racing_a_park_wakes_the_run(
        stores: tuple[PostgresStorage, PostgresStorage]) -> None:
    worker, client = stores
    for i in range(ROUNDS):
        run_id = f"cancel-{i}"
        epoch = await _claimed(worker, run_id, "w")
        now = time.time()
        _, flagged = await asyncio.gather(
            _jitter(worker.park_run(run_id, epoch, "w", status="waiting", wake_at=now + 3600,
                                    now=now, waiting_for=["signal:never"])),
            _jitter(client.request_cancel(run_id, now)))
        assert flagged == [run_id]
        row = await client.get_run(run_id)
        assert row is not None and row.cancel_requested
        assert row.wake_at is not None and row.wake_at <= time.time(), (i, row)


@pytest.mark.parametrize("path", ["queued", "lone"])
async def test_an_old_owner_cannot_write_behind_a_new_claim(
        stores: tuple[PostgresStorage, PostgresStorage], path: str) -> None:
    """The journal the new owner loads after its claim is the journal it writes on top of:
    an entry of the old owner is either in it, or fenced off for good. ``queued``: through
    the writer task (put_entry); ``lone``: committed in the caller's task (write_entry)."""
    old, new = stores
    lone_before = old._writer.lone
    outcomes = {"fenced": 0, "seen": 0}
    for i in range(ROUNDS):
        run_id = f"fence-{i}"
        now = time.time()
        await old.create_run(NewRun(run_id, "wf", "1", "[]", now))
        [run] = await old.claim(worker="old", keys=[KEY], limit=1, now=now + 1,
                                lease_until=now + 1)  # its lease lapses at once
        entry = JournalEntry(0, "step", "s", "completed", 1, '"old"')
        write = (old.put_entry(run_id, run.epoch, "old", entry) if path == "queued"
                 else old.write_entry(run_id, run.epoch, "old", entry))

        async def take_over(run_id: str = run_id) -> str | None:
            await asyncio.sleep(random.random() * 0.002)
            later = time.time() + 5
            # SKIP LOCKED passes over the row while the old owner's write holds it: claim
            # again, as a worker's next claim cycle would.
            got: list[Any] = []
            for _ in range(1000):
                got = await new.claim(worker="new", keys=[KEY], limit=1, now=later,
                                      lease_until=later + 60)
                if got:
                    break
            [taken] = got
            journal = await new.load_journal(run_id)
            if journal:
                return journal[0].output
            await new.put_entry(run_id, taken.epoch, "new",
                                JournalEntry(0, "step", "s", "completed", 1, '"new"'))
            return '"new"'

        results = await asyncio.gather(write, take_over(), return_exceptions=True)
        believed = results[1]
        [entry] = await new.load_journal(run_id)
        assert entry.output == believed, (i, results)
        if isinstance(results[0], LeaseLost):
            outcomes["fenced"] += 1
        else:
            assert results[0] is None
            outcomes["seen"] += 1
    assert outcomes["fenced"] + outcomes["seen"] == ROUNDS
    assert (old._writer.lone - lone_before == ROUNDS) == (path == "lone")


async def test_a_lone_write_skips_the_queue_and_later_writes_wait_for_it(
        stores: tuple[PostgresStorage, PostgresStorage]) -> None:
    """``write_entry`` on an idle writer commits in the caller's task; a write of the same
    run queued meanwhile commits after it (its rewrite of the same entry wins), and a
    fenced-off lone write raises LeaseLost."""
    store, _ = stores
    epoch = await _claimed(store, "lone-1", "w")
    writer = store._writer
    lone, batches = writer.lone, writer.batches
    first = asyncio.ensure_future(store.write_entry(
        "lone-1", epoch, "w", JournalEntry(0, "step", "s", "retrying", 1, None)))
    await asyncio.sleep(0)  # the lone write is in flight
    assert writer._busy
    second = store.put_entry("lone-1", epoch, "w",
                             JournalEntry(0, "step", "s", "completed", 2, '"done"'))
    third = asyncio.ensure_future(store.write_entry(  # not lone: the writer is busy
        "lone-1", epoch, "w", JournalEntry(1, "step", "t", "completed", 1, '"t"')))
    await asyncio.gather(first, second, third)
    assert writer.lone - lone == 1
    assert writer.batches - batches == 2  # the lone write, then one batch of the other two
    journal = await store.load_journal("lone-1")
    assert [(e.seq, e.status, e.output) for e in journal] == [
        (0, "completed", '"done"'), (1, "completed", '"t"')]
    with pytest.raises(LeaseLost):
        await store.write_entry("lone-1", epoch + 1, "w",
                                JournalEntry(2, "step", "s", "completed", 1, "1"))
    assert writer.lone - lone == 2
    assert [e.seq for e in await store.load_journal("lone-1")] == [0, 1]


async def test_group_commit_batches_runs_and_fences_each_entry(
        stores: tuple[PostgresStorage, PostgresStorage]) -> None:
    store, _ = stores
    epochs = {f"g-{i}": await _claimed(store, f"g-{i}", "w") for i in range(40)}
    futures = []
    for run_id, epoch in epochs.items():
        for seq in range(5):
            stale = seq == 4 and run_id.endswith("7")
            futures.append(store.put_entry(run_id, epoch + 1 if stale else epoch, "w",
                                           JournalEntry(seq, "step", "s", "completed", 1,
                                                        str(seq))))
        # The same entry rewritten before the first write committed: the last one wins.
        futures.append(store.put_entry(run_id, epoch, "w",
                                       JournalEntry(0, "step", "s", "completed", 2, "again")))
    batches_before = store._writer.batches
    results = await asyncio.gather(*futures, return_exceptions=True)
    lost = [r for r in results if isinstance(r, LeaseLost)]
    assert len(lost) == 4 and all(r is None for r in results if not isinstance(r, LeaseLost))
    assert store._writer.batches - batches_before <= 4  # 240 entries, a handful of commits
    for run_id in epochs:
        journal = await store.load_journal(run_id)
        assert [e.seq for e in journal] == ([0, 1, 2, 3] if run_id.endswith("7")
                                            else [0, 1, 2, 3, 4])
        assert (journal[0].output, journal[0].attempts) == ("again", 2)


async def test_a_write_whose_connection_dies_is_retried_on_a_new_one(
        stores: tuple[PostgresStorage, PostgresStorage], raw: Any) -> None:
    store, _ = stores
    epoch = await _claimed(store, "retry-1", "w")
    # Hold the journal so the group commit blocks, then kill the session that runs it.
    tx = raw.transaction()
    await tx.start()
    await raw.execute("LOCK TABLE perdure_journal IN ACCESS EXCLUSIVE MODE")
    write = store.put_entry("retry-1", epoch, "w", JournalEntry(0, "step", "s", "completed", 1,
                                                                 '"v"'))
    victim = None
    for _ in range(200):
        victim = await raw.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%perdure_journal%' AND pid <> pg_backend_pid()")
        if victim:
            break
        await asyncio.sleep(0.01)
    assert victim, "the journal write never blocked"
    await raw.fetchval("SELECT pg_terminate_backend($1)", victim)
    await tx.rollback()
    await asyncio.wait_for(write, 10)  # retried on a new connection, committed
    [entry] = await store.load_journal("retry-1")
    assert entry.output == '"v"'


async def test_migrations_race_safely_on_a_new_database(empty_db: Database) -> None:
    stores = [PostgresStorage(empty_db.url) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    conn = await empty_db.connect()
    try:
        rows = await conn.fetch("SELECT version, name FROM perdure_schema_version "
                                "ORDER BY version")
        # Each migration file once, in order (listed, not hard-coded: features add files).
        expected = [(m.version, m.name) for m in migrations("postgres", "perdure_")]
        assert expected[:2] == [(1, "init"), (2, "waits")]
        assert [tuple(r) for r in rows] == expected
    finally:
        await conn.close()


async def test_schemas_and_prefixes_keep_tenants_apart(db: Database, raw: Any) -> None:
    plain = PostgresStorage(db.url)
    tenant = PostgresStorage(db.url + "?schema=tenant_a")
    other = PostgresStorage(db.url, prefix="billing_", schema="tenant_a")
    woken: list[str] = []
    for s in (plain, tenant, other):
        await s.open()
    try:
        assert len({plain.channel, tenant.channel, other.channel}) == 3
        await tenant.register_worker("w", host="h", pid=1, pid_start=None, now=time.time())
        tenant.set_waker(lambda: woken.append("tenant"))
        await plain.create_run(NewRun("r", "wf", "1", "[]", time.time()))
        await other.create_run(NewRun("r", "wf", "1", "[]", time.time()))
        assert await tenant.get_run("r") is None
        assert (await other.get_run("r")) is not None and (await plain.get_run("r")) is not None
        await asyncio.sleep(0.2)
        assert woken == []  # other tenants' notifications are not ours
        # The same worker id in another tenant is another worker (another lock key).
        await other.register_worker("w", host="h", pid=1, pid_start=None, now=time.time())
        assert await plain.dead_workers("me", "h") == []
        tables = {r[0] for r in await raw.fetch(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname IN ('public', 'tenant_a')")}
        assert {"public.perdure_runs", "tenant_a.perdure_runs",
                "tenant_a.billing_runs"} <= tables
    finally:
        for s in (plain, tenant, other):
            await s.close()


async def test_notify_wakes_other_processes_and_the_listener_reconnects(
        stores: tuple[PostgresStorage, PostgresStorage], raw: Any) -> None:
    worker, client = stores
    woken = asyncio.Event()
    calls: list[float] = []

    def wake() -> None:
        calls.append(time.monotonic())
        woken.set()

    await worker.register_worker("w1", host="h", pid=1, pid_start=None, now=time.time())
    worker.set_waker(wake)
    await worker.create_run(NewRun("mine", "wf", "1", "[]", time.time()))
    await asyncio.sleep(0.2)
    assert calls == []  # our own process's notifications do not come back to us
    assert not await worker.changed()

    for what, act in [
        ("start", client.create_run(NewRun("theirs", "wf", "1", "[]", time.time()))),
        ("signal", client.send_signal("theirs", "s", "1", None, time.time())),
        ("cancel", client.request_cancel("theirs", time.time())),
    ]:
        woken.clear()
        await act
        await asyncio.wait_for(woken.wait(), 5), what
        assert await worker.changed() and not await worker.changed()

    # Kill the listening session: it comes back, takes the worker's lock and LISTENs again,
    # and wakes the worker once (notifications sent meanwhile are lost).
    session = worker._session._conn
    assert session is not None
    session_pid = session.get_server_pid()
    woken.clear()
    await raw.fetchval("SELECT pg_terminate_backend($1)", session_pid)
    await asyncio.wait_for(woken.wait(), 5)
    assert worker._session.reconnects == 1
    assert await client.dead_workers("me", "other-host") == []  # the lock is held again
    woken.clear()
    await client.create_run(NewRun("after", "wf", "1", "[]", time.time()))
    await asyncio.wait_for(woken.wait(), 5)


_REGISTER = textwrap.dedent("""
    import asyncio, sys, time
    from perdure.storage.postgres.adapter import PostgresStorage

    async def main():
        store = PostgresStorage(sys.argv[1])
        await store.open()
        await store.register_worker("far-away", host="another-host", pid=1, pid_start=None,
                                    now=time.time())
        print("registered", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_a_killed_worker_on_another_host_is_dead_as_soon_as_its_session_drops(
        db: Database) -> None:
    """The advisory-lock path alone (the pid check cannot see another host)."""
    observer = PostgresStorage(db.url, restart_grace=0)
    await observer.open()
    proc = subprocess.Popen([sys.executable, "-c", _REGISTER, db.url], stdout=subprocess.PIPE,
                            cwd=os.getcwd())
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line == b"registered\n"
        assert await observer.dead_workers("me", "this-host") == []
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while await observer.dead_workers("me", "this-host") != ["far-away"]:
            assert time.monotonic() - killed < 5
            await asyncio.sleep(0.005)
        print(f"\nworker on another host seen dead {time.monotonic() - killed:.3f} s "
              "after SIGKILL (advisory lock released)")
        assert await observer.expire_worker("far-away") == 0
        assert await observer.dead_workers("me", "this-host") == []
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        await observer.close()


async def test_a_migration_numbered_below_the_newest_applied_is_still_applied(
        empty_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # A database made by a release that had migration N+2 but not N (branches merged in
    # another order than their numbers): the next start must apply N, not see N+2 and stop.
    import perdure.storage.postgres.adapter as adapter

    full = migrations("postgres", "perdure_")
    skipped = full[-2]
    monkeypatch.setattr(adapter, "migrations",
                        lambda backend, p: [m for m in full if m.version != skipped.version])
    older = PostgresStorage(empty_db.url)
    await older.open()
    await older.close()
    monkeypatch.setattr(adapter, "migrations", lambda backend, p: full)
    newer = PostgresStorage(empty_db.url)
    try:
        assert await newer.open() == [skipped.label]
    finally:
        await newer.close()

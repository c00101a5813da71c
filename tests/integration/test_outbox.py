"""The transactional outbox on every backend: emit, delivery in order per key, retries, dead
letters, one publisher at a time and its failover, push wake-ups, fencing, bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    LeaseLost,
    NotInWorkflow,
    OutboxEvent,
    RetryPolicy,
    SerializationError,
    VirtualClock,
    step,
    workflow,
)
from perdure.records import JournalEntry
from perdure.storage.outbox_port import NewEvent
from perdure.testing import wait_for_status

NOW_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)


class Recorder:
    """A sink that records every call, fails the calls ``fail`` says to, and lets a test wait
    for a condition on what it received."""

    def __init__(self, fail: Callable[[OutboxEvent], bool] = lambda e: False) -> None:
        self.calls: list[OutboxEvent] = []
        self.delivered: list[OutboxEvent] = []
        self.fail = fail
        self._changed = asyncio.Condition()
        self.active = 0
        self.max_active_per_key: dict[str | None, int] = {}
        self._active_keys: dict[str | None, int] = {}

    async def __call__(self, event: OutboxEvent) -> None:
        self._active_keys[event.key] = self._active_keys.get(event.key, 0) + 1
        self.max_active_per_key[event.key] = max(self.max_active_per_key.get(event.key, 0),
                                                 self._active_keys[event.key])
        try:
            await asyncio.sleep(0)  # let another delivery of the same key overlap, if it may
            self.calls.append(event)
            failed = self.fail(event)
            if not failed:
                self.delivered.append(event)
            async with self._changed:
                self._changed.notify_all()
            if failed:
                raise RuntimeError(f"refusing {event.id} (attempt {event.attempt})")
        finally:
            self._active_keys[event.key] -= 1

    async def wait(self, check: Callable[[Recorder], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: check(self))

    def names(self, key: str | None) -> list[str]:
        return [e.payload["n"] for e in self.delivered if e.key == key]


@dataclasses.dataclass
class Shipped:
    order: str
    at: datetime


@workflow
async def ships(order: str, n: int) -> list[str]:
    ids = [await perdure.emit("order.shipped", Shipped(order, datetime(2030, 1, 1, tzinfo=UTC)),
                              key=order)]
    for i in range(n):
        ids.append(await perdure.emit("order.note", {"n": f"{order}-{i}"}, key=order))
    return ids


@workflow
async def emits(events: list[tuple[str, str | None]]) -> list[str]:
    return [await perdure.emit("e", {"n": n}, key=key) for n, key in events]


async def _drained(engine: Engine, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while (await engine.outbox.stats()).pending:
            await asyncio.sleep(0.02)


async def test_emitted_events_are_delivered_with_stable_ids(make_engine: Any) -> None:
    sink = Recorder()
    engine = await make_engine(ships, outbox=sink)
    handle = await engine.start(ships, "o-1", 2, id="run-1")
    ids = await handle.result(timeout=10)
    assert ids == ["run-1:0", "run-1:1", "run-1:2"]
    await sink.wait(lambda s: len(s.delivered) == 3)
    first = sink.delivered[0]
    assert (first.id, first.name, first.key, first.run_id, first.attempt) == (
        "run-1:0", "order.shipped", "o-1", "run-1", 1)
    assert first.payload == {"order": "o-1", "at": "2030-01-01T00:00:00+00:00"}
    assert [e.id for e in sink.delivered] == ids
    assert [(e.kind, e.name, e.output) for e in await handle.journal()] == [
        ("emit", "order.shipped", '"run-1:0"'), ("emit", "order.note", '"run-1:1"'),
        ("emit", "order.note", '"run-1:2"')]
    await _drained(engine)
    stats = await engine.outbox.stats()
    assert (stats.pending, stats.dead, stats.delivered, stats.leader) == (
        0, 0, 3, engine.worker_id)


@workflow
async def emit_wait_emit() -> str:
    await perdure.emit("before", {"n": "before"}, key="k")
    go = await perdure.wait_for_signal("go")
    await perdure.emit("after", {"n": go}, key="k")
    return "done"


async def test_replay_does_not_emit_again(make_engine: Any) -> None:
    # No sink: the events stay in the outbox, where they can be counted.
    engine = await make_engine(emit_wait_emit, park_after=0.05)
    handle = await engine.start(emit_wait_emit, id="r")
    await wait_for_status(handle, "waiting")  # parked: the coroutine is gone
    await handle.signal("go", "after")
    assert await handle.result(timeout=10) == "done"
    pending = await engine.outbox.pending()
    assert [(e.id, e.name, e.payload) for e in pending] == [
        ("r:0", "before", {"n": "before"}), ("r:2", "after", {"n": "after"})]
    assert [e.attempt for e in pending] == [1, 1]
    # A replay of the finished run's journal (a resume would do it) finds the ids recorded.
    assert [e.output for e in await handle.journal() if e.kind == "emit"] == ['"r:0"', '"r:2"']


async def test_order_per_key_retries_and_dead_letters(make_engine: Any) -> None:
    refuse = {"a1": 2, "b0": 99}  # a1 fails twice then goes through; b0 never does

    def fail(event: OutboxEvent) -> bool:
        return event.attempt <= refuse.get(event.payload["n"], 0)

    sink = Recorder(fail)
    engine = await make_engine(emits, outbox=sink, outbox_retry=NOW_RETRY)
    plan = [("a0", "a"), ("b0", "b"), ("a1", "a"), ("b1", "b"), ("x", None), ("a2", "a"),
            ("b2", "b"), ("y", None)]
    await (await engine.start(emits, plan)).result(timeout=10)
    await sink.wait(lambda s: len(s.delivered) == 7)
    await _drained(engine)
    assert sink.names("a") == ["a0", "a1", "a2"]
    assert sink.names("b") == ["b1", "b2"]  # b0 went to the dead letters after 3 attempts
    assert sorted(sink.names(None)) == ["x", "y"]
    assert all(n == 1 for k, n in sink.max_active_per_key.items() if k is not None)
    assert [e.attempt for e in sink.calls if e.payload["n"] == "a1"] == [1, 2, 3]
    # a2 was not tried before a1 went through
    order = [e.payload["n"] for e in sink.calls]
    assert order.index("a2") > max(i for i, n in enumerate(order) if n == "a1")
    dead = await engine.outbox.dead_letters()
    assert [(d.event.payload["n"], d.attempts) for d in dead] == [("b0", 3)]
    assert "refusing" in dead[0].error and dead[0].failed_at > 0
    stats = await engine.outbox.stats()
    assert (stats.pending, stats.retrying, stats.dead) == (0, 0, 1)
    assert (stats.delivered, stats.failed_attempts, stats.dead_lettered) == (7, 5, 1)

    refuse.clear()  # the receiver is fixed: replay the dead letter
    assert await engine.outbox.replay([dead[0].event.id]) == 1
    await sink.wait(lambda s: s.names("b") == ["b1", "b2", "b0"])
    assert sink.delivered[-1].attempt == 1  # a fresh set of attempts
    await _drained(engine)
    assert (await engine.outbox.stats()).dead == 0


async def test_purge_and_replay_dead_letters(make_engine: Any) -> None:
    broken = True
    sink = Recorder(lambda e: broken)
    engine = await make_engine(emits, outbox=sink,
                               outbox_retry=RetryPolicy(max_attempts=1, jitter=0.0))
    await (await engine.start(emits, [("p", "k"), ("q", None), ("r", None)],
                              id="d")).result(timeout=10)
    async with asyncio.timeout(15):
        while (await engine.outbox.stats()).dead < 3:
            await asyncio.sleep(0.02)
    assert [d.event.id for d in await engine.outbox.dead_letters()] == ["d:0", "d:1", "d:2"]
    assert [d.event.id for d in await engine.outbox.dead_letters(limit=1)] == ["d:0"]
    assert await engine.outbox.purge(["d:1"]) == 1
    assert await engine.outbox.purge(older_than=3600) == 0  # none is that old
    assert await engine.outbox.purge(["nope"]) == 0
    broken = False
    assert await engine.outbox.replay() == 2  # all that remain
    await sink.wait(lambda s: {e.id for e in s.delivered} == {"d:0", "d:2"})
    assert await engine.outbox.dead_letters() == []
    with pytest.raises(InvalidConfiguration, match="as a list"):
        await engine.outbox.replay("d:0")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration):
        await engine.outbox.purge(older_than=-1)
    with pytest.raises(InvalidConfiguration):
        await engine.outbox.pending(limit=0)
    with pytest.raises(InvalidConfiguration):
        await engine.outbox.purge([None])  # type: ignore[list-item]


async def test_one_publisher_at_a_time_and_handover_on_close(make_engine: Any) -> None:
    sinks = [Recorder(), Recorder()]
    publishers = [await make_engine(outbox=s) for s in sinks]  # publishers only
    emitter = await make_engine(emits)  # drives the workflow, delivers nothing
    await (await emitter.start(emits, [(f"e{i}", "k") for i in range(5)])).result(timeout=10)
    await _drained(emitter)
    leader = (await emitter.outbox.stats()).leader
    ids = [p.worker_id for p in publishers]
    assert leader in ids
    lead = ids.index(leader)
    # The leader delivered everything, in order; the other nothing.
    assert sinks[lead].names("k") == [f"e{i}" for i in range(5)]
    assert sinks[1 - lead].delivered == []
    # The leader stops cleanly: it gives the lease up, and the other takes over at once.
    await publishers[lead].close()
    await (await emitter.start(emits, [("late", "k")])).result(timeout=10)
    await sinks[1 - lead].wait(lambda s: s.names("k") == ["late"], timeout=20)
    assert (await emitter.outbox.stats()).leader == ids[1 - lead]


async def test_failover_when_the_publisher_stops_renewing(make_engine: Any,
                                                          clock: VirtualClock) -> None:
    sinks = [Recorder(), Recorder()]
    publishers = [await make_engine(outbox=s, clock=clock, lease=5.0) for s in sinks]
    emitter = await make_engine(emits, clock=clock)
    async with asyncio.timeout(15):
        while (leader := (await emitter.outbox.stats()).leader) is None:
            await asyncio.sleep(0.02)
    dead = next(i for i, p in enumerate(publishers) if p.worker_id == leader)
    await publishers[dead].abort()  # as a crash: the lease is not given back
    await (await emitter.start(emits, [("e", "k")])).result(timeout=10)
    clock.advance(6)  # past the dead publisher's lease
    live = sinks[1 - dead]
    await live.wait(lambda s: len(s.delivered) == 1, timeout=20)
    assert sinks[dead].delivered == []
    assert (await emitter.outbox.stats()).leader == publishers[1 - dead].worker_id


async def test_emit_wakes_the_publisher_without_polling(make_engine: Any) -> None:
    sink = Recorder()
    # The poll (the safety net) is 30 s away: only a push delivers within the test.
    engine = await make_engine(emits, outbox=sink, poll_interval=30.0)
    async with asyncio.timeout(15):
        while (await engine.outbox.stats()).leader is None:
            await asyncio.sleep(0.02)
    await (await engine.start(emits, [("now", "k")])).result(timeout=10)
    await sink.wait(lambda s: len(s.delivered) == 1, timeout=10)


@pytest.mark.postgres
async def test_another_process_emit_wakes_the_publisher(make_engine: Any, db_url: str) -> None:
    if not db_url.startswith("postgres"):
        pytest.skip("SQLite has no push between processes (its publisher polls)")
    sink = Recorder()
    publisher = await make_engine(outbox=sink, poll_interval=30.0)
    async with asyncio.timeout(15):
        while (await publisher.outbox.stats()).leader is None:
            await asyncio.sleep(0.02)
    emitter = await make_engine(emits, poll_interval=30.0)  # its own connections: a NOTIFY
    await (await emitter.start(emits, [("pushed", "k")])).result(timeout=10)
    await sink.wait(lambda s: len(s.delivered) == 1, timeout=10)


async def test_outbox_writes_are_fenced(make_engine: Any) -> None:
    engine = await make_engine()
    outbox = engine.store.outbox
    entry = JournalEntry(0, "emit", "e", "completed", 1, '"nope:0"')
    with pytest.raises(LeaseLost):  # no such run owned at that epoch: nothing is written
        await outbox.put_event("nope", 1, "w", entry, NewEvent("nope:0", "e", None, "1", 1.0))
    assert await engine.outbox.pending() == []
    assert await engine.store.load_journal("nope") == []
    now = engine.clock.time()
    for worker in ("w1", "w2"):  # live (registered) workers: only a lapse frees the lease
        await engine.store.register_worker(worker, host="h", pid=os.getpid(), pid_start=None,
                                           now=now)
    term = await outbox.lead("w1", now=now, lease_until=now + 1)
    assert term is not None
    assert await outbox.lead("w2", now=now, lease_until=now + 1) is None  # w1 holds it
    taken = await outbox.lead("w2", now=now + 2, lease_until=now + 3)  # w1's lapsed
    assert taken == term + 1
    with pytest.raises(LeaseLost):
        await outbox.delivered("w1", term, ["x"], now)
    with pytest.raises(LeaseLost):
        await outbox.retry("w1", term, "x", attempts=1, error="e", next_at=now)
    with pytest.raises(LeaseLost):
        await outbox.bury("w1", term, "x", attempts=1, error="e", now=now)
    await outbox.delivered("w2", taken, ["x"], now)  # the holder may (nothing to delete)
    await outbox.resign("w2", taken)
    assert await outbox.lead("w1", now=now + 2, lease_until=now + 3) == taken + 1
    # A holder no longer registered (the reaper forgot it: it died) loses the lease at once.
    await engine.store.unregister_worker("w1")
    assert await outbox.lead("w2", now=now + 2, lease_until=now + 3) == taken + 2


# -- bad input ------------------------------------------------------------------------------

@step(max_attempts=1)  # a refusal, not a transient failure: retrying it only waited 3 s
async def emits_in_a_step() -> str:
    await perdure.emit("from.step")
    return "no"


BAD_EMITS: list[tuple[str, Callable[[], Any]]] = [
    ("nul name", lambda: perdure.emit("a\x00b")),
    ("int name", lambda: perdure.emit(5)),  # type: ignore[arg-type]
    ("empty name", lambda: perdure.emit("")),
    ("long name", lambda: perdure.emit("x" * 256)),
    ("nul key", lambda: perdure.emit("e", key="k\x00")),
    ("int key", lambda: perdure.emit("e", key=7)),  # type: ignore[arg-type]
    ("newline key", lambda: perdure.emit("e", key="a\r\nX-Evil: 1")),
    ("payload", lambda: perdure.emit("e", object())),
    ("set of objects", lambda: perdure.emit("e", {"k": object()})),
]


@workflow
async def bad_emits() -> list[str]:
    seen = []
    for label, call in BAD_EMITS:
        try:
            call()  # raises at the call: nothing to await
            seen.append(f"{label}: accepted")
        except (InvalidConfiguration, SerializationError) as exc:
            seen.append(f"{label}: {type(exc).__name__}")
    try:
        await emits_in_a_step()
    except perdure.StepFailed as exc:
        seen.append(f"in a step: {exc.cause_type}")
    seen.append(await perdure.emit("fine", "ok"))
    return seen


async def test_bad_emit_input_is_refused_at_the_call(make_engine: Any) -> None:
    engine = await make_engine(bad_emits)
    handle = await engine.start(bad_emits, id="bad")
    seen = await handle.result(timeout=10)
    assert seen == [
        "nul name: InvalidConfiguration", "int name: InvalidConfiguration",
        "empty name: InvalidConfiguration", "long name: InvalidConfiguration",
        "nul key: InvalidConfiguration", "int key: InvalidConfiguration",
        "newline key: InvalidConfiguration", "payload: SerializationError",
        "set of objects: SerializationError", "in a step: perdure.errors.NotInWorkflow",
        "bad:1",  # the step took seq 0; no refused emit took a number
    ]
    assert [e.id for e in await engine.outbox.pending()] == ["bad:1"]
    assert [(e.seq, e.kind) for e in await handle.journal()] == [(0, "step"), (1, "emit")]
    with pytest.raises(NotInWorkflow):
        perdure.emit("outside")


@pytest.mark.sqlite_only
async def test_bad_outbox_options_are_refused(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(InvalidConfiguration, match="must be a callable"):
        Engine(url, outbox=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration, match="RetryPolicy"):
        Engine(url, outbox=Recorder(), outbox_retry=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration, match="outbox_timeout"):
        Engine(url, outbox=Recorder(), outbox_timeout=0)


@pytest.mark.sqlite_only
async def test_a_plain_function_sink_runs_in_a_thread(tmp_path: Any) -> None:
    got: list[str] = []
    url = f"sqlite:///{tmp_path / 'x.db'}"
    async with Engine(url, workflows=[emits], outbox=lambda e: got.append(e.id)) as engine:
        await (await engine.start(emits, [("a", None)], id="t")).result(timeout=10)
        await _drained(engine)
    assert got == ["t:0"]


# -- a key's head under concurrency, and the repair ------------------------------------------

async def _sql(db_url: str, statement: str) -> list[Any]:
    """Run raw SQL on the test's database (to look at, or to damage, the tables)."""
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute(statement).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    import asyncpg

    pg = await asyncpg.connect(db_url)
    try:
        return [tuple(r) for r in await pg.fetch(statement)]
    finally:
        await pg.close()


async def test_concurrent_emits_on_one_key_are_delivered_one_at_a_time(
        make_engine: Any, db_url: str) -> None:
    sink = Recorder()
    publisher = await make_engine(outbox=sink)
    emitters = [await make_engine(emits) for _ in range(2)]  # two connections' worth
    plans = {f"c{i}": [(f"c{i}-{j}", f"k{j % 3}") for j in range(6)] for i in range(16)}
    handles = [await emitters[i % 2].start(emits, plan, id=run)
               for i, (run, plan) in enumerate(plans.items())]
    await asyncio.gather(*(h.result(timeout=30) for h in handles))
    await sink.wait(lambda s: len(s.delivered) == 16 * 6, timeout=30)
    await _drained(publisher)
    assert sorted(e.id for e in sink.delivered) == sorted(f"{r}:{j}" for r in plans
                                                            for j in range(6))
    assert sink.max_active_per_key == {"k0": 1, "k1": 1, "k2": 1}
    for run in plans:  # a run's events of one key arrive in the order it emitted them
        for key in ("k0", "k1", "k2"):
            mine = [e.payload["n"] for e in sink.delivered if e.run_id == run and e.key == key]
            assert mine == [n for n, k in plans[run] if k == key]
    assert await _sql(db_url, "SELECT key, pending FROM perdure_outbox_keys") == []


async def test_a_new_publisher_repairs_damaged_key_counts(make_engine: Any,
                                                          db_url: str) -> None:
    emitter = await make_engine(emits)
    await (await emitter.start(emits, [("a", "k"), ("b", "k"), ("c", "j"), ("d", None)],
                               id="x")).result(timeout=10)
    # An operator's hand (or a bug): the counts are gone and no event is ready any more.
    await _sql(db_url, "DELETE FROM perdure_outbox_keys")
    await _sql(db_url, "UPDATE perdure_outbox SET ready_at = NULL")
    sink = Recorder()
    await make_engine(outbox=sink)
    await sink.wait(lambda s: len(s.delivered) == 4)
    assert sink.names("k") == ["a", "b"]
    await _drained(emitter)
    assert await _sql(db_url, "SELECT key, pending FROM perdure_outbox_keys") == []

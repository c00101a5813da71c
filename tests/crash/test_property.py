"""Property: a run crashed at random points, then finished by new engines, ends exactly as the
same run without crashes.

One generic workflow interprets a random program (steps that succeed, fail a few times, or
fail for good; compensations that work or not; failures caught or not; ``perdure.now()``
reads; a workflow that raises). Every step attempt and compensation attempt passes crash
points, before and after its side effect. A crash plan says at which crash point each engine
incarnation dies: there ``Engine.abort()`` stops everything and writes nothing more, the
virtual clock moves past the lease (the dead engine's pid is this process, alive, so it is the
lease-expiry path that frees the run), and a new engine on the same file carries on.

Compared with the crash-free run: final status, result, and journal (kinds, names, statuses,
attempts, outputs, errors; not timestamps, not ``now()`` values); and the side-effect ledger
equals the crash-free one plus exactly one execution per crash that cut a step off after its
side effect (at-least-once, and no more than that).

In-process for speed: no SIGKILL here (see test_kill.py for real processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import perdure
from perdure import (
    Engine,
    NonRetryable,
    RetryPolicy,
    StepFailed,
    VirtualClock,
    WorkflowFailed,
    WorkflowHandle,
    step,
    workflow,
)
from perdure.workflow.definitions import Step
from tests.crash.harness import journal_shape

LEASE = 30.0
POLICY = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)


@dataclass(frozen=True)
class Op:
    """One operation of a program."""

    kind: Literal["ok", "flaky", "fatal", "now", "boom"]
    fails: int = 0             # flaky: attempts that fail before one succeeds
    compensate: bool = False   # the step has a compensation...
    comp_fails: bool = False   # ... which always fails
    caught: bool = False       # the workflow catches the step's failure and goes on


# -- crash points -------------------------------------------------------------------------

@dataclass
class Crashes:
    """Where the engines die, and what the side effects were (reset for every run)."""

    plan: list[int] = field(default_factory=list)  # per incarnation: crash points to pass
    countdown: int | None = None
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    points: int = 0                                 # crash points passed, in all
    hits: list[tuple[str, str]] = field(default_factory=list)  # (key, where) of each crash
    effects: Counter[str] = field(default_factory=Counter)     # side effects by step key

    def arm(self) -> None:
        """Set up the next incarnation's crash."""
        self.countdown = self.plan.pop(0) if self.plan else None
        self.fired = asyncio.Event()


STATE = Crashes()


async def crash_point(key: str, where: str) -> None:
    """Die here if the plan says so: tell the test, then block until it aborts the engine."""
    STATE.points += 1
    if STATE.countdown is None:
        return
    if STATE.countdown > 0:
        STATE.countdown -= 1
        return
    STATE.countdown = None
    STATE.hits.append((key, where))
    STATE.fired.set()
    await asyncio.Event().wait()


# -- the interpreter ----------------------------------------------------------------------

_steps: dict[tuple[int, Op], Step[Any, Any]] = {}


def step_for(i: int, op: Op) -> Step[[int], str]:
    """The step of operation ``i`` (the same object on every replay)."""
    found = _steps.get((i, op))
    if found is not None:
        return found

    async def body(i: int) -> str:
        key = perdure.step_key()
        await crash_point(key, "before")
        STATE.effects[key] += 1
        n = STATE.effects[key]
        # A flaky step's outcome depends on how often it was called before (like a real
        # flaky service): no crash point between its side effect and its outcome, or the
        # crashed run would legitimately see one failure fewer.
        if op.kind != "flaky":
            await crash_point(key, "after")
        if op.kind == "fatal":
            raise NonRetryable(f"op {i} refuses")
        if op.kind == "flaky" and n <= op.fails:
            raise ConnectionError(f"op {i} attempt {n} failed")
        return f"op {i} done key={key}"

    async def undo(i: int, result: str) -> None:
        key = perdure.step_key()
        await crash_point(key, "before")
        STATE.effects[key] += 1
        await crash_point(key, "after")
        if op.comp_fails:
            raise RuntimeError(f"undo {i} failed")

    made: Step[[int], str] = step(name=f"op{i}-{op.kind}", retry=POLICY,
                                  compensate=undo if op.compensate else None)(body)
    _steps[(i, op)] = made
    return made


@workflow(name="program")
async def program(ops: list[Op]) -> list[str]:
    """Interpret ``ops``."""
    out: list[str] = []
    for i, op in enumerate(ops):
        if op.kind == "now":
            perdure.now()
            out.append(f"now {i}")
            await crash_point(f"workflow:{i}", "workflow")
            continue
        if op.kind == "boom":
            raise ValueError(f"op {i} boom")
        call = step_for(i, op)(i)
        if op.caught:
            try:
                out.append(await call)
            except StepFailed as exc:
                out.append(f"caught {i}: {exc.cause_type}")
        else:
            out.append(await call)
    await crash_point("workflow:end", "workflow")
    return out


# -- running a program, with crashes ------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """How a program's run ended."""

    status: str
    result: Any
    journal: list[tuple[Any, ...]]
    effects: Counter[str]
    hits: list[tuple[str, str]]
    points: int
    engines: int


async def _open(url: str, clock: VirtualClock) -> Engine:
    engine = Engine(url, workflows=[program], clock=clock, lease=LEASE, synchronous="normal",
                    shutdown_grace=0.5)
    await engine.open()
    return engine


async def _finished_or_crashed(handle: WorkflowHandle[list[str]]) -> tuple[Any, ...] | None:
    """The run's outcome, or None when the engine reached its crash point first."""

    async def outcome() -> tuple[Any, ...]:
        try:
            return ("completed", await handle.result())
        except WorkflowFailed as exc:
            return ("failed", exc.cause_type, exc.cause_message)

    finished = asyncio.create_task(outcome())
    crashed = asyncio.create_task(STATE.fired.wait())
    try:
        done, _ = await asyncio.wait({finished, crashed}, timeout=20,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (finished, crashed):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if finished in done:
        return finished.result()
    if crashed in done:
        return None
    raise TimeoutError("the run neither finished nor crashed within 20 s")


async def execute(ops: list[Op], plan: list[int]) -> Run:
    """Run ``ops`` on a fresh database, dying at each crash point of ``plan`` in turn."""
    global STATE
    STATE = Crashes(plan=list(plan))
    STATE.arm()
    clock = VirtualClock()
    engines = 1
    with tempfile.TemporaryDirectory(prefix="perdure-prop-") as tmp:
        url = f"sqlite:///{tmp}/prop.db"
        engine = await _open(url, clock)
        try:
            handle = await engine.start(program, ops, id="prop")
            while (result := await _finished_or_crashed(handle)) is None:
                await engine.abort()           # the crash: nothing more is written
                clock.advance(LEASE + 1)       # its lease lapses
                STATE.arm()
                engine = await _open(url, clock)
                engines += 1
                handle = engine.handle("prop")
            info = await handle.status()
            journal = [(seq, kind, name, status, attempts, None if kind == "now" else output,
                        error)
                       for seq, kind, name, status, attempts, output, error
                       in journal_shape(await handle.journal())]
        finally:
            await engine.close()
    return Run(info.status.value, result, journal, STATE.effects, STATE.hits, STATE.points,
               engines)


# -- the property -------------------------------------------------------------------------

_flag = st.booleans()
operations = st.one_of(
    st.builds(Op, kind=st.just("ok"), compensate=_flag, comp_fails=_flag),
    st.builds(Op, kind=st.just("flaky"), fails=st.integers(1, 3), compensate=_flag,
              comp_fails=_flag, caught=_flag),
    st.builds(Op, kind=st.just("fatal"), compensate=_flag, comp_fails=_flag, caught=_flag),
    st.just(Op("now")),
)
#: how a program ends: often by failing, so that its compensations run
endings = st.sampled_from([None, Op("boom"), Op("fatal")])
programs = st.builds(lambda ops, end: ops if end is None else [*ops, end],
                     st.lists(operations, min_size=1, max_size=5), endings)
#: where each incarnation dies, as a fraction of the crash-free run's crash points
crash_plans = st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=1,
                       max_size=3)


@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=programs, plan=crash_plans)
# A rollback cut off after its first compensation was journaled (crash point 8 of 10).
@example(ops=[Op("ok", compensate=True), Op("ok", compensate=True), Op("fatal")], plan=[0.85])
# A crash between two attempts of a retried step (point 1: before attempt 2).
@example(ops=[Op("flaky", fails=2)], plan=[0.3])
# A crash right after a now() read, then again mid-step on the next engine.
@example(ops=[Op("now"), Op("ok", compensate=True), Op("boom")], plan=[0.0, 0.3])
def test_crashes_at_any_point_do_not_change_the_outcome(ops: list[Op], plan: list[float]
                                                        ) -> None:
    clean = asyncio.run(execute(ops, []))
    assert clean.engines == 1 and not clean.hits
    crashed = asyncio.run(execute(ops, [int(f * clean.points) for f in plan]))

    if clean.points:
        assert crashed.hits, "the first planned crash point is always reached"
    assert crashed.engines == len(crashed.hits) + 1
    assert crashed.status == clean.status
    assert crashed.result == clean.result
    assert crashed.journal == clean.journal
    # At-least-once, and no more: one extra execution per step cut off after its side effect.
    cut_off = Counter(key for key, where in crashed.hits if where == "after")
    assert crashed.effects == clean.effects + cut_off

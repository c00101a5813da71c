"""The workflows the crash tests run in real worker processes.

Started as ``python -m perdure worker tests.crash.app:WORKFLOWS --db ...``. The steps coordinate
with the test through files, never through timing. The directory named by
``PERDURE_CRASH_DIR`` holds:

* ``ledger.jsonl``: one line per side effect that really happened (run id, step or
  compensation name, ``perdure.step_key()``, pid of the process that did it). It is the
  external system of record: it shows what executed twice, which no journal can.
* ``events.fifo``: a FIFO the test reads. A step told to hang writes a ``hung`` event there,
  then blocks forever, so the test knows exactly when to SIGKILL its process.

The environment of each worker process says where to hang:

* ``PERDURE_CRASH_HANG``: comma-separated ``NAME@before`` (hang before the side effect) or
  ``NAME@after`` (hang after it, before the step returns, so its journal write never happens).
* ``PERDURE_CRASH_HANG_MODE=stop``: instead of blocking, the process stops itself (SIGSTOP)
  at the hang point, so that after a SIGCONT the step carries on exactly from there.
* ``PERDURE_CRASH_HANG_AFTER=N``: once this process performed N side effects, every further
  one hangs after it.
* ``PERDURE_CRASH_NOTIFY=1``: report every side effect as a ``did`` event (best effort).
* ``PERDURE_CRASH_WORK_MS``: simulated I/O time of each step, so two workers share the work.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import perdure
from perdure import Engine, NonRetryable, RetryPolicy, Step, StepFailed, step, workflow

__all__ = ["ESCAPES", "EVENTS", "LEDGER", "SHORT_LEASE", "WORKFLOWS", "exits", "pipeline",
           "race_start", "saga"]

LEDGER = "ledger.jsonl"
EVENTS = "events.fifo"

#: no back-off between attempts: retries never make a test wait
FAST = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)

_effects = 0  # side effects this process performed


def _dir() -> Path | None:
    value = os.environ.get("PERDURE_CRASH_DIR")
    return Path(value) if value else None


def _hang_points() -> set[str]:
    return {p.strip() for p in os.environ.get("PERDURE_CRASH_HANG", "").split(",") if p.strip()}


def _emit(event: str, *, best_effort: bool = False, **fields: object) -> None:
    """Write one event line to the test's FIFO (atomic: far below PIPE_BUF)."""
    base = _dir()
    if base is None or not (base / EVENTS).exists():
        return
    line = json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n"
    try:
        # Non-blocking: with no reader (ENXIO) or a full pipe (EAGAIN) this fails instead of
        # wedging the worker.
        fd = os.open(base / EVENTS, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        if not best_effort:
            raise


def _record(kind: str, name: str, key: str) -> None:
    """Append the side effect to the ledger: one O_APPEND write, atomic across processes."""
    base = _dir()
    if base is None:
        return
    line = json.dumps({"run": perdure.run_id(), "kind": kind, "name": name, "key": key,
                       "pid": os.getpid()}) + "\n"
    fd = os.open(base / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def _hang(kind: str, name: str, key: str, where: str) -> None:
    _emit("hung", kind=kind, name=name, key=key, run=perdure.run_id(), where=where)
    if os.environ.get("PERDURE_CRASH_HANG_MODE") == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen, whole process, until SIGCONT
        return
    await asyncio.Event().wait()  # until SIGKILL (or a drain cancels the run)


async def _effect(kind: str, name: str) -> str:
    """The side effect of a step or compensation, with the hang points around it."""
    global _effects
    key = perdure.step_key()
    hang = _hang_points()
    if f"{name}@before" in hang:
        await _hang(kind, name, key, "before")
    work_ms = float(os.environ.get("PERDURE_CRASH_WORK_MS") or 0)
    if work_ms:
        await asyncio.sleep(work_ms / 1000)  # simulated I/O, not a wait for some state
    _record(kind, name, key)
    _effects += 1
    limit = os.environ.get("PERDURE_CRASH_HANG_AFTER")
    if f"{name}@after" in hang or (limit is not None and _effects > int(limit)):
        await _hang(kind, name, key, "after")
    if os.environ.get("PERDURE_CRASH_NOTIFY"):
        _emit("did", best_effort=True, kind=kind, name=name, key=key, run=perdure.run_id())
    return key


def _pipeline_step(name: str) -> Step[[str], str]:
    async def body(tag: str) -> str:
        key = await _effect("step", name)
        return f"{name}({tag}) key={key}"

    body.__qualname__ = body.__name__ = name
    return step(name=name, retry=FAST)(body)


STEPS = [_pipeline_step(f"s{i}") for i in range(1, 6)]


@workflow(name="pipeline")
async def pipeline(tag: str, steps: int = 5) -> list[str]:
    """Up to five steps in a row; the result lists what each returned."""
    return [await s(tag) for s in STEPS[:steps]]


# -- a saga whose last step fails for good --------------------------------------------------

def _undo(name: str) -> object:
    async def undo(tag: str, result: str) -> None:
        await _effect("compensation", name)

    undo.__qualname__ = undo.__name__ = name
    return undo


def _booking(name: str, undo: str) -> Step[[str], str]:
    async def body(tag: str) -> str:
        key = await _effect("step", name)
        return f"{name}({tag}) key={key}"

    body.__qualname__ = body.__name__ = name
    return step(name=name, retry=FAST, compensate=_undo(undo))(body)  # type: ignore[arg-type]


book_a = _booking("book_a", "undo_a")
book_b = _booking("book_b", "undo_b")
book_c = _booking("book_c", "undo_c")


@step(name="settle", retry=FAST)
async def settle(tag: str) -> None:
    await _effect("step", "settle")
    raise NonRetryable(f"cannot settle {tag}")


@workflow(name="saga")
async def saga(tag: str) -> None:
    """Book three things, then fail for good: the bookings are undone newest first."""
    await book_a(tag)
    await book_b(tag)
    await book_c(tag)
    await settle(tag)


# -- a step that raises SystemExit -----------------------------------------------------------

@step(name="exit_step", retry=FAST)
async def exit_step(tag: str) -> str:
    await _effect("step", "exit_step")
    raise SystemExit(3)  # would end the worker process if it escaped the step


@workflow(name="exits")
async def exits(tag: str) -> str:
    """A step that exits the process on every attempt: the workflow handles its failure."""
    try:
        return await exit_step(tag)
    except StepFailed as exc:
        return f"handled {exc.cause_type} after {exc.attempts} attempt(s)"


WORKFLOWS = [pipeline, saga]
#: the exiting workflow beside the ordinary ones (a target of its own, so the other crash
#: tests' workers stay as they were)
ESCAPES = [*WORKFLOWS, exits]

#: a worker target with a 1 s lease (heartbeat every 0.25 s), for the lease-expiry tests; the
#: command's ``--db`` replaces its URL
SHORT_LEASE = Engine("sqlite:///unused.db", workflows=WORKFLOWS, lease=1.0)


# -- racing starts from several processes ---------------------------------------------------

def race_start(url: str, run_ids: list[str], barrier: object, out: object) -> None:
    """In a child process: for each id, wait at ``barrier`` with the other racers, then
    ``start(pipeline, ..., id=...)`` at the same moment. Puts ``(pid, ids started)`` or
    ``(pid, error text)`` on ``out``."""
    try:
        started = asyncio.run(_race(url, run_ids, barrier))
        out.put((os.getpid(), started))  # type: ignore[attr-defined]
    except BaseException as exc:
        out.put((os.getpid(), f"{type(exc).__name__}: {exc}"))  # type: ignore[attr-defined]
        raise


async def _race(url: str, run_ids: list[str], barrier: object) -> list[str]:
    started: list[str] = []
    async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
        for run_id in run_ids:
            barrier.wait(timeout=20)  # type: ignore[attr-defined]
            handle = await client.start(pipeline, run_id, 2, id=run_id)
            started.append(handle.id)
    return started


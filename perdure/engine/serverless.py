"""Hosts that are not long-running processes: one invocation drives what it can, then exits.

For AWS Lambda, Cloud Run jobs or a Kubernetes CronJob. Each invocation starts a worker on
demand (:meth:`Worker.start_on_demand`: registered, freeing dead peers' runs, renewing its
leases), claims and drives runs within a budget, and drains with no grace: a run still in
flight is handed back (pending, claimable at once) so the next invocation takes it without
waiting for a lease to lapse. A killed invocation is a dead worker like any other: its runs are
freed by the next one on the same host, or when their leases lapse.

While it has other work, a run waiting for an event may linger in memory (a quick reply
resumes it without a replay); once the host has nothing left to claim, such runs park at once,
since the process is about to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from perdure.engine.worker import Worker
from perdure.records import RunStatus

__all__ = ["RunOnceSummary", "TickSummary", "drive_one", "fire_schedules", "run_once", "tick"]

# The most runs one claim statement takes (as the background worker's loop does).
_BATCH = 64
# Passes of schedule firing in one go (a pass fires a bounded number of due schedules).
_MAX_PASSES = 20


@dataclass(frozen=True, slots=True)
class RunOnceSummary:
    """What one ``engine.run_once()`` invocation did.

    Counts of runs: ``claimed`` counts claims (a run parked and woken again within the
    invocation is claimed twice); ``completed``, ``failed`` (failed or cancelled), ``blocked``
    and ``parked`` (waiting for a timer, a signal or a child) are the distinct runs driven, by
    how they stood when the invocation ended; ``handed_back`` were still in flight when the
    budget ran out (claimable at once by the next invocation). ``recovered`` counts claims of
    runs a dead (or lapsed) worker held; ``timers_fired`` the parked runs whose wake-up time
    had come when the invocation began (a timer, a retry back-off or a timeout, or a signal or
    child that woke them).
    """

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    blocked: int = 0
    parked: int = 0
    handed_back: int = 0
    timers_fired: int = 0
    recovered: int = 0
    #: runs started by schedules whose slot had come (fired by this invocation, so a
    #: deployment with no long-running worker still runs its schedules), and finished runs
    #: deleted by the engine's ``retention`` (one pass); ``outbox_flushed`` stays 0 (the
    #: outbox is delivered by a long-running publisher)
    outbox_flushed: int = 0
    schedules_fired: int = 0
    runs_pruned: int = 0
    #: seconds the invocation took (real time)
    elapsed: float = 0.0
    #: True when the budget (time or ``max_runs``) ended it, False when no run was left
    budget_spent: bool = False


@dataclass(frozen=True, slots=True)
class TickSummary:
    """What one ``engine.tick()`` did: ``recovered`` runs of dead workers made claimable now,
    ``timers_due`` parked runs whose wake-up time has come (claimable by any host now),
    ``schedules_fired`` runs started by due schedules, ``runs_pruned`` finished runs deleted
    by the engine's ``retention``. ``outbox_flushed`` stays 0: the outbox is delivered by a
    long-running publisher."""

    recovered: int = 0
    timers_due: int = 0
    outbox_flushed: int = 0
    schedules_fired: int = 0
    runs_pruned: int = 0


async def tick(worker: Worker, *, prune: Callable[[], Awaitable[int]] | None = None
               ) -> TickSummary:
    """The background maintenance of a long-running worker, once: free the runs of dead
    workers, fire the schedules whose slot has come, prune (with ``prune``: one retention
    pass), and count the parked runs now due.

    Timers need no firing in Perdure: a parked run's due time is on its row, and any claim
    takes it once the time has come; ``timers_due`` says how many are waiting for a host.
    """
    before = worker.peers_freed
    await worker._reap_dead_peers()
    fired = await fire_schedules(worker)
    pruned = await prune() if prune is not None else 0
    due = await worker.store.count_due(worker.keys, worker.clock.time())
    return TickSummary(recovered=worker.peers_freed - before, timers_due=due,
                       schedules_fired=fired, runs_pruned=pruned)


async def fire_schedules(worker: Worker) -> int:
    """Fire every schedule slot due now (pass after pass, for a backlog); the runs started."""
    scheduler, total = worker.scheduler, 0
    if scheduler is None:
        return 0
    for _ in range(_MAX_PASSES):
        now = worker.clock.time()
        if not scheduler.due(now):
            break
        started = await scheduler.fire(now)
        total += started
        if not started:
            break
    return total


async def run_once(worker: Worker, *, max_runs: int | None, max_seconds: float,
                   prune: Callable[[], Awaitable[int]] | None = None) -> RunOnceSummary:
    """Drive the runnable runs with ``worker`` (not started) until none is left or the budget
    is spent, then hand back the rest; see :class:`RunOnceSummary`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + max_seconds
    await worker.start_on_demand()
    ticked: TickSummary | None = None
    claims = recovered = fired = pruned = 0
    driven: set[str] = set()
    handed_back: set[str] = set()
    spent = False
    try:
        ticked = TickSummary(recovered=worker.peers_freed, timers_due=await
                             worker.store.count_due(worker.keys, worker.clock.time()))
        may_claim = True
        while True:
            if loop.time() >= deadline:
                spent = True
                break
            # Schedules first: the runs a slot starts are claimed in this same invocation.
            started_now = await fire_schedules(worker)
            fired += started_now
            may_claim = may_claim or bool(started_now)
            want = min(worker.free_slots(), _BATCH)
            if max_runs is not None:
                want = min(want, max_runs - claims)
            got = await worker.claim_now(want) if want > 0 and may_claim else []
            claims += len(got)
            recovered += sum(run.recovered for run in got)
            driven.update(run.id for run in got)
            if got and len(got) == want:
                continue  # there may be more
            if not worker.active:
                # Nothing in flight and nothing claimable (or max_runs reached): done.
                spent = max_runs is not None and claims >= max_runs
                break
            # Nothing more to claim now: a run lingering for an event parks (the process is
            # about to end); runs in short timers or steps are waited for.
            worker.runner.park_waiters()
            may_claim = await worker.wait_on_demand(deadline - loop.time(),
                                                    has_room=want > 0)
    finally:
        handed_back = set(worker.active)
        await worker.drain(0)
    if prune is not None and not spent:
        pruned = await prune()  # what time is left after the runs; never before them
    counts = await _outcomes(worker, driven - handed_back)
    return RunOnceSummary(
        claimed=claims, handed_back=len(handed_back), recovered=recovered,
        timers_fired=ticked.timers_due if ticked else 0, schedules_fired=fired,
        runs_pruned=pruned, elapsed=loop.time() - started,
        budget_spent=spent or bool(handed_back), **counts)


async def drive_one(worker: Worker, run_id: str, *, max_seconds: float | None) -> bool:
    """Drive the run ``run_id`` with ``worker`` (not started) if it is claimable now, until it
    finishes or parks (or ``max_seconds`` pass: then it is handed back). Returns whether this
    call claimed it: False when another worker holds it, it has ended or it is not due, so
    two deliveries of the same message never drive it twice at once."""
    loop = asyncio.get_running_loop()
    deadline = None if max_seconds is None else loop.time() + max_seconds
    await worker.start_on_demand()
    try:
        claimed = bool(await worker.claim_now(1, run_id))
        while worker.active:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            worker.runner.park_waiters()  # one run, nothing else to do: a wait parks at once
            await worker.wait_on_demand(worker.poll_interval if remaining is None
                                        else min(remaining, worker.poll_interval),
                                        has_room=False)
    finally:
        await worker.drain(0)
    return claimed


async def _outcomes(worker: Worker, run_ids: set[str]) -> dict[str, int]:
    counts = {"completed": 0, "failed": 0, "blocked": 0, "parked": 0}
    for run_id in run_ids:
        row = await worker.store.get_run(run_id)
        status = None if row is None else RunStatus(row.status)
        if status is RunStatus.COMPLETED:
            counts["completed"] += 1
        elif status in (RunStatus.FAILED, RunStatus.CANCELLED):
            counts["failed"] += 1
        elif status is RunStatus.BLOCKED:
            counts["blocked"] += 1
        else:
            # Waiting, or pending again (woken after it parked), or running under another
            # worker that took it over: not finished by this invocation.
            counts["parked"] += 1
    return counts

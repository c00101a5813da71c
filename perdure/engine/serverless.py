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
from dataclasses import dataclass

from perdure.engine.worker import Worker
from perdure.records import RunStatus

__all__ = ["RunOnceSummary", "TickSummary", "drive_one", "run_once", "tick"]

# The most runs one claim statement takes (as the background worker's loop does).
_BATCH = 64


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
    #: hooks for the maintenance a later release adds to an invocation (outbox delivery,
    #: schedules, retention): 0 until those are wired into :func:`tick`
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
    ``timers_due`` parked runs whose wake-up time has come (claimable by any host now).
    ``outbox_flushed``, ``schedules_fired`` and ``runs_pruned`` are hooks that stay 0 until
    those features are wired into :func:`tick`."""

    recovered: int = 0
    timers_due: int = 0
    outbox_flushed: int = 0
    schedules_fired: int = 0
    runs_pruned: int = 0


async def tick(worker: Worker) -> TickSummary:
    """The background maintenance of a long-running worker, once: free the runs of dead
    workers, and count the parked runs now due.

    Timers need no firing in Perdure: a parked run's due time is on its row, and any claim
    takes it once the time has come; ``timers_due`` says how many are waiting for a host.
    Outbox delivery, schedules and retention add their pass here when they land (their
    counts go in the summary's fields reserved for them).
    """
    before = worker.peers_freed
    await worker._reap_dead_peers()
    due = await worker.store.count_due(worker.keys, worker.clock.time())
    return TickSummary(recovered=worker.peers_freed - before, timers_due=due)


async def run_once(worker: Worker, *, max_runs: int | None, max_seconds: float
                   ) -> RunOnceSummary:
    """Drive the runnable runs with ``worker`` (not started) until none is left or the budget
    is spent, then hand back the rest; see :class:`RunOnceSummary`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + max_seconds
    await worker.start_on_demand()
    ticked: TickSummary | None = None
    claims = recovered = 0
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
    counts = await _outcomes(worker, driven - handed_back)
    return RunOnceSummary(
        claimed=claims, handed_back=len(handed_back), recovered=recovered,
        timers_fired=ticked.timers_due if ticked else 0,
        elapsed=loop.time() - started, budget_spent=spent or bool(handed_back), **counts)


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

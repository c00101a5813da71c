"""What one firing of a schedule does: a pure function of the schedule's row and the time.

The worker reads a due schedule, asks :func:`plan` what to do, and writes the answer in one
transaction that holds only if nobody changed the schedule meanwhile (compare-and-set on its
revision): the runs to start (ids derived from their slots), the run to cancel, the new
``next_due`` and buffered slot, and the counters. Everything here is deterministic, so two
workers that read the same row compute the same firing, and only one of them writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from perdure.flow.schedules import Overlap
from perdure.flow.slots import iterate, slot_run_id
from perdure.storage.port import NewRun, ScheduleFiring, ScheduleRow

__all__ = ["BATCH", "Plan", "new_run", "plan", "trigger_run_id"]

#: slots looked at by one firing; a longer backlog (a per-second schedule after a long outage)
#: is worked off by the next firings, each its own short transaction
BATCH = 1000
_TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Plan:
    """One firing: what to write to the schedule, the runs to start and the runs to cancel."""

    firing: ScheduleFiring
    runs: tuple[NewRun, ...]
    cancel: tuple[str, ...]


def new_run(row: ScheduleRow, run_id: str, now: float) -> NewRun:
    """The run a firing of ``row`` starts."""
    # Hook for queues and routing: when runs get a queue, a key or a selector, a schedule that
    # carries them passes them here.
    return NewRun(run_id, row.workflow, row.version, row.input, now)


def trigger_run_id(schedule_id: str) -> str:
    """The id of a run started by hand (``trigger``): it fires no slot, so it is unique."""
    return f"{schedule_id}@trigger-{uuid.uuid4().hex[:16]}"


def _active(row: ScheduleRow) -> bool:
    """Whether the previous firing's run is still going (a run that is gone is not)."""
    return row.last_run_status is not None and row.last_run_status not in _TERMINAL


def plan(row: ScheduleRow, now: float) -> Plan | None:
    """The firing of ``row`` at ``now``, or None when there is nothing to do.

    A buffered slot (``buffer_one``) fires first once the previous run has ended. Then the
    due slots, oldest first: those older than ``now - catchup`` are skipped and counted; the
    rest go through the overlap policy. ``cancel_other`` starts only the newest of them (the
    older ones would be cancelled by it at once) and counts the others as overlapped.
    """
    active = _active(row)
    buffered = row.buffered_at
    fire: list[float] = []
    cancel: list[str] = []
    missed = overlapped = 0
    if buffered is not None and not active:
        fire.append(buffered)
        buffered, active = None, True
    next_due = row.next_due
    if next_due is not None and next_due <= now:
        horizon = now - row.catchup
        window: list[float] = []
        pending: Iterator[float] = chain([next_due], iterate(row.cron, row.timezone, next_due))
        next_due = None
        for looked, slot in enumerate(pending):
            if slot > now or looked >= BATCH:
                next_due = slot  # not looked at yet: the next firing starts from it
                break
            if slot < horizon:
                missed += 1
            else:
                window.append(slot)
        policy = Overlap(row.overlap)
        if policy is Overlap.ALLOW:
            fire += window
        elif policy is Overlap.CANCEL_OTHER:
            if window:
                overlapped += len(window) - 1
                if active and row.last_run_id is not None:
                    cancel.append(row.last_run_id)
                fire.append(window[-1])
        else:
            for slot in window:
                if not active:
                    fire.append(slot)
                    active = True
                elif policy is Overlap.BUFFER_ONE and buffered is None:
                    buffered = slot
                else:
                    overlapped += 1
    if not fire and not cancel and not missed and not overlapped \
            and next_due == row.next_due and buffered == row.buffered_at:
        return None
    runs = tuple(new_run(row, slot_run_id(row.id, slot), now) for slot in fire)
    last_run_id, last_slot = row.last_run_id, row.last_slot
    if fire:
        last_run_id, last_slot = runs[-1].id, fire[-1]
    return Plan(ScheduleFiring(next_due, buffered, last_run_id, last_slot, len(fire), missed,
                               overlapped), runs, tuple(cancel))

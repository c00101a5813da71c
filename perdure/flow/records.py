"""What ``engine.queues()`` (and ``perdure queues``) reports: each queue, runs routed without
a queue, and each limit, as they stand in the database now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perdure.flow.definitions import Rate
from perdure.storage.port import FlowStats

__all__ = ["FlowReport", "LimitState", "QueueState"]


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue now. ``name`` is None for routed runs that have no queue."""

    name: str | None
    concurrency: int | None
    per_worker: int | None
    per_key_concurrency: int | None
    rate: Rate | None
    depth: int                   #: runs in line, waiting for a slot
    waiting: int                 #: parked runs of the queue (delays, timers, limits ...)
    running: int
    parked_on_limit: int         #: parked runs waiting for a step's limit
    oldest_wait: float | None    #: seconds the oldest run in line has waited
    unroutable: int              #: runs in line that no live worker's labels admit


@dataclass(frozen=True, slots=True)
class LimitState:
    """A limit now."""

    name: str
    concurrency: int | None
    rate: Rate | None
    in_use: int                  #: semaphore slots held by running attempts
    in_window: int               #: grants in the rate's current window
    parked: int                  #: runs parked waiting for it
    oldest_wait: float | None    #: seconds the oldest of them has waited


@dataclass(frozen=True, slots=True)
class FlowReport:
    """Every queue, routed runs without a queue, and every limit."""

    queues: list[QueueState]
    limits: list[LimitState]

    @classmethod
    def from_stats(cls, stats: FlowStats, now: float) -> FlowReport:
        """Build from the storage's rows."""
        def age(since: Any) -> float | None:
            return None if since is None else max(0.0, now - float(since))

        def rate(count: Any, per: Any) -> Rate | None:
            return None if count is None else Rate(int(count), float(per))

        queues = [QueueState(r[0], r[1], r[2], r[3], rate(r[4], r[5]), int(r[6]), int(r[7]),
                             int(r[8]), int(r[9]), age(r[10]), int(r[11]))
                  for r in stats.queues]
        depth, oldest, stuck = stats.routed
        if depth:
            queues.append(QueueState(None, None, None, None, None, int(depth), 0, 0, 0,
                                     age(oldest), int(stuck or 0)))
        limits = [LimitState(r[0], r[1], rate(r[2], r[3]), int(r[4]), int(r[5]), int(r[6]),
                             age(r[7])) for r in stats.limits]
        return cls(queues, limits)

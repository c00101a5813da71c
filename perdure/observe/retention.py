"""Retention: finished runs older than a policy's age are pruned, with every row of theirs,
in small batches, by one worker at a time.

A worker engine built with ``retention=`` runs a :class:`Pruner` in the background. Each pass
takes (or renews) the ``retention`` lease row, so one worker of the fleet prunes while the
others skip, and a dead pruner's lease lapses so another takes over. A pass deletes batches
of ``batch`` runs (each batch one short transaction), yielding between batches so claims
are never held up behind a long delete, until nothing old enough is left. What is never
pruned: a run that is not finished (pending, running, waiting, blocked), and a finished run
whose parent is not finished (the parent may still wait for it) — see the storage's
``prunable`` query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from perdure import validate
from perdure.clock import Clock
from perdure.errors import InvalidConfiguration
from perdure.records import RunStatus
from perdure.storage.port import Storage

__all__ = ["FINISHED", "Pruner", "cutoffs", "retention_policy"]

log = logging.getLogger("perdure.retention")

#: the statuses retention may prune
FINISHED = (RunStatus.COMPLETED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value)
#: the name of the lease row that makes one worker at a time prune
LEASE = "retention"


def retention_policy(value: object) -> dict[str, float]:
    """``Engine(retention=)`` as seconds per finished status: a ``timedelta`` (or ``"30d"``)
    applies to every finished status; a mapping of status to age keeps the statuses it
    leaves out (or maps to None) forever."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        policy: dict[str, float] = {}
        for status, age in value.items():
            name = status.value if isinstance(status, RunStatus) else status
            if name not in FINISHED:
                raise InvalidConfiguration(
                    f"retention: {status!r} is not a finished status; only "
                    f"{', '.join(FINISHED)} runs are pruned")
            if age is not None:
                policy[name] = _positive(age, f"the retention of {name} runs")
        return policy
    return dict.fromkeys(FINISHED, _positive(value, "retention"))


def _positive(age: object, what: str) -> float:
    seconds = validate.age(age, what).total_seconds()
    if seconds <= 0:
        raise InvalidConfiguration(f"{what} must be positive (a run would be pruned as it "
                                   f"finishes, before anyone reads its result), not {age!r}")
    return seconds


def cutoffs(policy: Mapping[str, float], now: float) -> dict[str, float]:
    """The ``updated_at`` below which a run of each status is pruned, at ``now``."""
    return {status: now - age for status, age in policy.items()}


class Pruner:
    """Prunes by ``policy`` every ``every`` seconds while it holds the retention lease."""

    def __init__(self, *, store: Storage, clock: Clock, policy: Mapping[str, float],
                 owner: str, every: float = 60.0, batch: int = 200,
                 pause: float = 0.01) -> None:
        self.store = store
        self.clock = clock
        self.policy = dict(policy)
        self.owner = owner
        self.every = every
        self.batch = batch
        self.pause = pause
        #: runs pruned by this pruner so far
        self.pruned = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run passes in the background, the first one now."""
        if self._task is None and self.policy:
            self._task = asyncio.create_task(self._loop(), name="perdure-retention")

    async def stop(self) -> None:
        """Stop between two batches (a batch in flight is one transaction: it commits or
        not)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self.run_once()
                backoff = 1.0
                await self.clock.sleep(self.every)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database went away or a statement failed: never the runs' problem.
                # Try again later; another worker may take the lease meanwhile.
                log.exception("pruning failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.every)

    async def run_once(self) -> int:
        """One pass, if this pruner holds (or can take) the lease; the runs it pruned."""
        total = 0
        while await self._lease():
            n = await self.store.prune_runs(cutoffs(self.policy, self.clock.time()),
                                            limit=self.batch)
            total += n
            self.pruned += n
            if n < self.batch:
                break
            await asyncio.sleep(self.pause)  # let claims and journal writes in between
        if total:
            log.info("retention pruned %d finished run(s)", total)
        return total

    async def _lease(self) -> bool:
        now = self.clock.time()
        # Long enough to outlive a pass's gap, short enough that a dead pruner is replaced
        # within a few passes.
        return await self.store.take_lease(LEASE, self.owner, now=now,
                                           until=now + max(3 * self.every, 60.0))

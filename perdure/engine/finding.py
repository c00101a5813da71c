"""The engine's operations that find and count runs, prune old ones, and report on queues
and limits. Mixed into :class:`~perdure.engine.engine.Engine` (kept apart so that the engine
module stays the composition root)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from perdure import validate
from perdure.engine.listing import RunFilter, encode_cursor
from perdure.errors import InvalidConfiguration
from perdure.flow.records import FlowReport
from perdure.observe.retention import FINISHED, cutoffs
from perdure.records import RunPage, RunRow, RunStatus
from perdure.storage.port import Storage

if TYPE_CHECKING:
    from perdure.clock import Clock
    from perdure.observe.metrics import Metrics
    from perdure.workflow.payloads import Payloads

__all__ = ["LIVE_WINDOW", "QUEUE_METRICS_EVERY", "RunFinding"]

#: a worker that beat within this many seconds counts as live (routing reports)
LIVE_WINDOW = 30.0
#: seconds between two refreshes of the queue gauges by a worker with metrics on
QUEUE_METRICS_EVERY = 10.0

log = logging.getLogger("perdure")


class RunFinding:
    """Listing, counting and pruning runs; the queues report (methods of ``Engine``)."""

    store: Storage
    clock: Clock
    payloads: Payloads
    metrics: Metrics | None

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - the engine's

    async def list_runs(self, *, status: RunStatus | str | Iterable[RunStatus | str] | None = None,
                        workflow: str | None = None, version: str | None = None,
                        tags: Mapping[str, str] | None = None,
                        created_after: datetime | None = None,
                        created_before: datetime | None = None, parent: str | None = None,
                        limit: int = 100, cursor: str | None = None,
                        parent_id: str | None = None, queue: str | None = None) -> RunPage:
        """One page of runs, newest first, that match every filter given.

        ``status`` (one or several), ``workflow``, ``version``, ``parent`` (the parent's run
        id; ``parent_id`` is its older name), ``queue``, ``tags`` (each of these tags, by
        equality; served by an index), ``created_after`` (inclusive) and ``created_before``
        (exclusive, aware datetimes). At most ``limit`` runs (an int from 1). The page is a list of
        :class:`RunInfo` with ``next_cursor``: None when nothing follows, else pass it as
        ``cursor=`` with the same filters for the next page. Pages are keyset-paged: runs
        created while someone pages never make a run appear twice or be skipped. A bad filter
        raises ``InvalidConfiguration``, a cursor of another query ``InvalidCursor``.
        """
        self._check_open()
        validate.count(limit, "limit")
        where = self._filter(status, workflow, version, tags, created_after, created_before,
                             parent, parent_id, queue)
        rows = await self.store.list_runs(where.query(limit=limit + 1, cursor=cursor))
        last = rows[limit - 1] if len(rows) > limit else None
        return RunPage([await self.payloads.run_info(r) for r in rows[:limit]],
                       None if last is None else encode_cursor(where, last.created_at,
                                                               last.id))

    async def count_runs(self, *, status: RunStatus | str | Iterable[RunStatus | str] |
                         None = None, workflow: str | None = None, version: str | None = None,
                         tags: Mapping[str, str] | None = None,
                         created_after: datetime | None = None,
                         created_before: datetime | None = None,
                         parent: str | None = None, queue: str | None = None) -> int:
        """How many runs match the filters (those of :meth:`list_runs`)."""
        self._check_open()
        where = self._filter(status, workflow, version, tags, created_after, created_before,
                             parent, None, queue)
        return await self.store.count_runs(where.query(limit=1))

    @staticmethod
    def _filter(status: object, workflow: object, version: object, tags: object,
                created_after: object, created_before: object, parent: object,
                parent_id: object, queue: object) -> RunFilter:
        if parent is not None and parent_id is not None and parent != parent_id:
            raise InvalidConfiguration("give parent= or its older name parent_id=, not both")
        return RunFilter.of(status=status, workflow=workflow, version=version, tags=tags,
                            created_after=created_after, created_before=created_before,
                            parent=parent if parent is not None else parent_id, queue=queue)

    async def prune(self, older_than: timedelta | str, *,
                    status: RunStatus | str | Iterable[RunStatus | str] | None = None,
                    dry_run: bool = False, batch: int = 500) -> int:
        """Delete finished runs last updated more than ``older_than`` ago (a ``timedelta`` or
        ``"30d"``, ``"12h"``...), with their journals, history, signals and tags, in batches
        of ``batch`` runs; ``status`` narrows it to some finished statuses. Never a run that
        is not finished, nor one whose parent is not finished. Returns how many runs it
        deleted (with ``dry_run``: how many it would delete, deleting nothing)."""
        self._check_open()
        age = validate.age(older_than, "older_than").total_seconds()
        validate.count(batch, "batch")
        chosen = RunFilter.of(status=status).statuses or FINISHED
        unfinished = [s for s in chosen if s not in FINISHED]
        if unfinished:
            raise InvalidConfiguration(
                f"only finished runs are pruned ({', '.join(FINISHED)}), not "
                f"{', '.join(unfinished)}")
        limits = cutoffs(dict.fromkeys(chosen, age), self.clock.time())
        if dry_run:
            return await self.store.count_prunable(limits)
        total = 0
        while True:
            n = await self.store.prune_runs(limits, limit=batch)
            total += n
            if n < batch:
                return total
            await asyncio.sleep(0)  # let this process's claims and writes in between

    async def queues(self) -> FlowReport:
        """Every queue (depth, running, parked on a limit, the oldest wait, runs no live
        worker can take), runs routed without a queue, and every limit (slots in use, grants
        in the window, runs parked on it), as the database holds them now."""
        self._check_open()
        now = self.clock.time()
        report = FlowReport.from_stats(await self.store.flow_stats(now, now - LIVE_WINDOW), now)
        if self.metrics is not None:
            for queue in report.queues:
                if queue.name is not None:
                    self.metrics.set_queue(queue.name, queue.depth, queue.oldest_wait or 0.0)
        return report

    async def _feed_queue_metrics(self) -> None:
        """Refresh the queue gauges (``perdure_queue_depth``, ``..._oldest_waiting_seconds``)
        every ``QUEUE_METRICS_EVERY`` seconds, for as long as the engine is open (a task)."""
        while True:
            try:
                await self.queues()
            except Exception as exc:  # the database away for a moment: the next round retries
                log.debug("could not refresh the queue gauges: %s", exc)
            await asyncio.sleep(QUEUE_METRICS_EVERY)  # real time: scrapes are real time

    async def unroutable(self, row: RunRow) -> bool:
        """Whether no live worker's labels admit the routing selector of a run not started
        yet (a worker is live if it beat in the last ``LIVE_WINDOW`` seconds)."""
        if not row.requires or row.status not in (RunStatus.PENDING, RunStatus.WAITING):
            return False
        now = self.clock.time()
        return not await self.store.routable(row.requires, now - LIVE_WINDOW)

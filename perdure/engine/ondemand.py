"""Hosts that are not long-running processes (serverless functions, cron jobs): the engine's
``run_once``, ``drive`` and ``tick``. Mixed into :class:`~perdure.engine.engine.Engine`; the
work itself is in :mod:`perdure.engine.serverless`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from perdure import validate
from perdure.engine import serverless
from perdure.engine.worker import Worker
from perdure.errors import InvalidConfiguration, RunNotFound
from perdure.observe.retention import Pruner
from perdure.records import RunInfo
from perdure.storage.port import Storage

if TYPE_CHECKING:
    from perdure.clock import Clock
    from perdure.workflow.definitions import Workflow
    from perdure.workflow.registry import Registry

__all__ = ["OnDemandHosts"]


class OnDemandHosts:
    """Driving runs on demand, without a background worker (methods of ``Engine``)."""

    store: Storage
    clock: Clock
    retention: dict[str, float]
    workflows: Registry
    worker_id: str
    _worker: Worker | None

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - the engine's

    def _new_worker(self, worker_id: str) -> Worker:
        raise NotImplementedError  # pragma: no cover - the engine's

    def _lookup(self, wf: Workflow[Any, Any] | str) -> Workflow[Any, Any]:
        raise NotImplementedError  # pragma: no cover - the engine's

    async def status(self, run_id: str) -> RunInfo:
        raise NotImplementedError  # pragma: no cover - the engine's

    async def run_once(self, *, max_seconds: float,
                       max_runs: int | None = None) -> serverless.RunOnceSummary:
        """Drive runnable runs until none is left, ``max_seconds`` (real time) pass or
        ``max_runs`` were claimed; hand back the rest (claimable at once) and say what was
        done. For hosts where no process lives long (Lambda, a CronJob): open the engine with
        ``worker=False`` and call this once per invocation. ``InvalidConfiguration`` for a
        budget that is not a positive finite number, before touching the database."""
        budget = validate.seconds(max_seconds, "max_seconds")
        if max_runs is not None:
            validate.count(max_runs, "max_runs")
        async with self._on_demand() as worker:
            return await serverless.run_once(worker, max_runs=max_runs, max_seconds=budget,
                                             prune=self._prune_pass())

    async def drive(self, run_id: str, *, max_seconds: float | None = None) -> RunInfo:
        """Drive the run ``run_id`` (named in a queue message) until it finishes or parks (or
        ``max_seconds`` pass: it is handed back); return its status. Idempotent: a run another
        invocation holds, that has ended or is not due is left alone. ``RunNotFound``, and
        ``UnknownWorkflowError`` for a workflow this engine lacks, with nothing written."""
        self._check_open()
        budget = None if max_seconds is None else validate.seconds(max_seconds, "max_seconds")
        row = await self.store.get_run(validate.run_id(run_id))
        if row is None:
            raise RunNotFound(run_id)
        self._lookup(row.workflow)
        async with self._on_demand() as worker:
            await serverless.drive_one(worker, run_id, max_seconds=budget)
        return await self.status(run_id)

    async def tick(self) -> serverless.TickSummary:
        """The maintenance a long-running worker does in the background, once: free the runs
        of dead workers and count the parked runs now due (see ``TickSummary``). For a cron
        job next to hosts that only ``drive`` runs pushed to them."""
        self._check_open()
        return await serverless.tick(self._new_worker(self.worker_id),
                                     prune=self._prune_pass())

    def _prune_pass(self) -> Callable[[], Awaitable[int]] | None:
        """One retention pass (under the retention lease), if the engine has a policy."""
        if not self.retention:
            return None
        return Pruner(store=self.store, clock=self.clock, policy=self.retention,
                      owner=self.worker_id).run_once

    @contextlib.asynccontextmanager
    async def _on_demand(self) -> AsyncIterator[Worker]:
        """A fresh worker for one invocation, wired as this engine's worker while it lasts
        (so a run it drives wakes it)."""
        self._check_open()
        if not self.workflows:
            raise InvalidConfiguration("this engine has no workflows to drive: pass "
                                       "Engine(..., workflows=[...])")
        if self._worker is not None:
            raise InvalidConfiguration(
                "this engine already drives runs (a background worker, or another run_once or "
                "drive in progress): open it with Engine(..., worker=False) to drive on demand")
        self._worker = worker = self._new_worker(Worker.new_id())
        try:
            yield worker
        finally:
            self._worker = None

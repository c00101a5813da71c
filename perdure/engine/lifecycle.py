"""The engine's operations for long-lived runs and changing code: pause, resume (of a paused,
blocked or failed run), fork, export, stranded runs. Mixed into
:class:`~perdure.engine.engine.Engine` (kept apart so that the engine module stays the
composition root and not a catalogue of operator commands)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from perdure import validate
from perdure.engine.handle import RunClient, WorkflowHandle
from perdure.engine.histories import ExportedRun
from perdure.engine.stranded import LIVE_LEASES, split_key
from perdure.errors import InvalidConfiguration, PerdureError, RunNotFound
from perdure.records import Incarnation, JournalEntry, RunInfo, RunStatus
from perdure.storage.port import RunQuery, Storage

if TYPE_CHECKING:
    from perdure.clock import Clock
    from perdure.engine.worker import Worker

__all__ = ["RunLifecycle"]


class RunLifecycle:
    """Pause, fork, export and stranded runs (methods of ``Engine``)."""

    store: Storage
    clock: Clock
    lease: float
    _worker: Worker | None

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - the engine's

    # -- pause ------------------------------------------------------------------------------

    async def pause(self, run_id: str) -> bool:
        """Pause a run: it parks at its next durable await (a pending or parked run at once)
        with status ``paused``, and no worker claims it until ``resume(run_id)``.

        Signals sent meanwhile are buffered; timers that fall due wait; children keep running.
        A step already executing finishes first. Returns False, changing nothing, if the run
        had already finished; raises ``RunNotFound`` for an unknown id.
        """
        self._check_open()
        validate.run_id(run_id)
        status = await self.store.request_pause(run_id, self.clock.time())
        if status is None:
            if await self.store.get_run(run_id) is None:
                raise RunNotFound(run_id)
            return False
        if self._worker is not None:
            self._worker.runner.request_pause(run_id)
        return True

    async def resume(self, run_id: str) -> WorkflowHandle[Any]:
        """Re-drive a blocked or failed run after a fix, or continue a paused one.

        A paused run (``pause``) becomes claimable again (a pause not yet reached is
        withdrawn). A blocked run replays from its journal. A failed run starts a new generation: it
        re-executes from its first failed step, and every step whose compensation ran executes
        again, under new idempotency keys (``step_key()`` gets a ``:gN`` suffix, so a provider
        that deduplicates by key does not answer with the refunded charge); completed steps
        without a compensation keep their journaled results. Either way how the run had ended
        and the journal entries the resume superseded stay in ``history()``.
        """
        self._check_open()
        row = await self.store.get_run(validate.run_id(run_id))
        if row is None:
            raise RunNotFound(run_id)
        status = RunStatus(row.status)
        if status is RunStatus.PAUSED or (row.pause_requested and status in (
                RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)):
            return await self._unpause(run_id)
        if status not in (RunStatus.BLOCKED, RunStatus.FAILED):
            raise PerdureError(f"run {run_id!r} is {status}; only blocked or failed runs "
                               "(and paused ones) can be resumed")
        if row.pause_requested:  # resuming also withdraws a pause the run never reached
            await self.store.unpause(run_id, self.clock.time())
        redo: list[int] = []
        if status is RunStatus.FAILED:
            redo = _entries_to_redo(await self.store.load_journal(run_id))
        moved = await self.store.admin_transition(
            run_id, from_status=status, to_status=RunStatus.PENDING, supersede=redo,
            new_generation=status is RunStatus.FAILED, now=self.clock.time())
        if not moved:
            raise PerdureError(f"run {run_id!r} changed while resuming it; look again")
        if self._worker is not None:
            self._worker.wake.set()
        return WorkflowHandle(cast("RunClient", self), run_id)

    async def _unpause(self, run_id: str) -> WorkflowHandle[Any]:
        if not await self.store.unpause(run_id, self.clock.time()):
            raise PerdureError(f"run {run_id!r} changed while resuming it; look again")
        if self._worker is not None:
            self._worker.runner.request_pause(run_id, paused=False)
            self._worker.wake.set()
        return self._handle(run_id)

    # -- fork -------------------------------------------------------------------------------

    async def fork(self, run_id: str, *, from_seq: int, id: str | None = None
                   ) -> WorkflowHandle[Any]:
        """A new run of the same workflow, version and arguments whose journal entries before
        ``from_seq`` are copied from ``run_id``: the steps before it are not executed again
        (no re-spent tokens, no repeated charges) and everything from ``from_seq`` on runs
        again under the fork's own step keys (``FORK_ID:SEQ``). ``RunInfo.forked_from`` and
        ``forked_seq`` link it to the original.

        A fork adopts what it copies: if it fails, its saga compensates the copied steps too,
        and a copied child start refers to the original's child. ``id`` defaults to a new
        UUID; forking again with the same ``id`` and arguments returns the same fork. Raises
        ``RunNotFound``, and ``InvalidConfiguration`` for a ``from_seq`` past the journal's
        end or past the point where the run began to roll back (a compensation or a delivered
        cancellation), or an ``id`` already used by another run.
        """
        self._check_open()
        validate.run_id(run_id)
        if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0:
            raise InvalidConfiguration(f"from_seq must be a non-negative int, not {from_seq!r}")
        new_id = validate.run_id(id) if id is not None else str(uuid.uuid4())
        if await self.store.get_run(run_id) is None:
            raise RunNotFound(run_id)
        journal = await self.store.load_journal(run_id)
        end = journal[-1].seq + 1 if journal else 0
        if from_seq > end:
            raise InvalidConfiguration(
                f"cannot fork run {run_id!r} from seq {from_seq}: its journal ends at seq "
                f"{end - 1} (fork from 0 to {end})")
        rollback = [e.seq for e in journal if e.seq < from_seq
                    and (e.kind == "compensation" or e.status == "cancelled")]
        if rollback:
            raise InvalidConfiguration(
                f"cannot fork run {run_id!r} from seq {from_seq}: it began to roll back at seq "
                f"{rollback[0]} (fork from seq {rollback[0]} or earlier)")
        created = await self.store.fork_run(run_id, new_id, upto_seq=from_seq,
                                            now=self.clock.time())
        if not created:
            existing = await self.store.get_run(new_id)
            if existing is None or (existing.forked_from, existing.forked_seq) != (run_id,
                                                                                   from_seq):
                raise InvalidConfiguration(f"run id {new_id!r} is already used by another run")
        elif self._worker is not None:
            self._worker.wake.set()
        return self._handle(new_id)

    # -- history of long-lived runs ---------------------------------------------------------

    async def incarnations(self, run_id: str) -> list[Incarnation]:
        """The run's incarnations that continued as new; see
        ``WorkflowHandle.incarnations``."""
        self._check_open()
        return await self._handle(validate.run_id(run_id)).incarnations()

    async def export_runs(self, run_ids: Sequence[str] = (), *, workflow: str | None = None,
                          status: RunStatus | str | None = None, limit: int = 100
                          ) -> list[ExportedRun]:
        """The runs ``run_ids`` (``RunNotFound`` for an unknown one) or, without ids, the
        newest ``limit`` runs (of ``workflow``, with ``status``), with their current journals,
        for ``perdure.engine.histories.document`` (what ``perdure runs export`` writes)."""
        self._check_open()
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        if run_ids:
            rows = []
            for rid in run_ids:
                row = await self.store.get_run(validate.run_id(rid))
                if row is None:
                    raise RunNotFound(rid)
                rows.append(row)
        else:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
                raise InvalidConfiguration(f"limit must be a positive int, not {limit!r}")
            wanted = None if status is None else _status(status)
            rows = await self.store.list_runs(RunQuery(
                statuses=() if wanted is None else (wanted,), workflow=workflow, limit=limit))
        out = []
        for row in rows:
            journal = await self.store.load_journal(row.id)
            out.append(ExportedRun(row.id, row.workflow, row.version, row.status, row.input,
                                   row.output, row.error, row.generation, row.incarnation,
                                   tuple(journal)))
        return out

    # -- stranded runs ----------------------------------------------------------------------

    async def stranded_runs(self, *, workflow: str | None = None,
                            limit: int = 100) -> list[RunInfo]:
        """Unfinished runs whose workflow and version no live worker serves (a worker is live
        while its heartbeat is at most three leases old), newest first."""
        self._check_open()
        rows = await self.store.stranded_runs(live_after=self._live_after(),
                                              workflow=workflow, limit=limit)
        return [RunInfo.from_row(r) for r in rows]

    async def served_versions(self) -> dict[str, list[str]]:
        """What the live workers serve: workflow name to versions."""
        self._check_open()
        served: dict[str, list[str]] = {}
        for key in await self.store.served_keys(live_after=self._live_after()):
            name, version = split_key(key)
            served.setdefault(name, []).append(version)
        return served

    def _handle(self, run_id: str) -> WorkflowHandle[Any]:
        return WorkflowHandle(cast("RunClient", self), run_id)

    def _live_after(self) -> float:
        return self.clock.time() - LIVE_LEASES * self.lease


def _status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(status)
    except ValueError:
        raise InvalidConfiguration(
            f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}"
        ) from None


def _entries_to_redo(journal: list[JournalEntry]) -> list[int]:
    """Journal entries a resumed failed run must execute again: everything from its first
    failed step on, every compensation, and every step a compensation undid."""
    first_failed = min((e.seq for e in journal if e.kind == "step" and e.status == "failed"),
                       default=None)
    drop = {e.seq for e in journal
            if e.kind == "compensation" or (first_failed is not None and e.seq >= first_failed)}
    for e in journal:
        if e.kind == "compensation" and e.status == "completed" and e.output:
            undone = json.loads(e.output).get("compensated")
            if isinstance(undone, int):
                drop.add(undone)
    return sorted(drop)

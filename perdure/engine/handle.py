"""Run handles: what ``engine.start`` returns, to await, inspect and steer a run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from perdure import validate
from perdure.codec.functions import FunctionCodec
from perdure.errors import RunBlocked, RunCancelled, RunNotFound, WorkflowFailed
from perdure.records import (
    ErrorInfo,
    Incarnation,
    JournalEntry,
    ResumeRecord,
    RunInfo,
    RunRow,
    RunStatus,
    failed_compensations,
)
from perdure.storage.port import Storage
from perdure.workflow.payloads import Payloads

if TYPE_CHECKING:
    from perdure.engine.talk import Talk

__all__ = ["RunClient", "WorkflowHandle"]

R = TypeVar("R")


class RunClient(Protocol):
    """What a handle needs of the engine that made it (the engine implements it)."""

    @property
    def store(self) -> Storage:
        """The engine's storage."""
        ...

    def codec_for(self, workflow: str, version: str | None = None) -> FunctionCodec:
        """The codec of a workflow's result (at ``version``: several may be served)."""
        ...

    @property
    def payloads(self) -> Payloads:
        """How stored payloads are read back (codec, blob store)."""
        ...

    def settled_event(self, run_id: str) -> AbstractContextManager[asyncio.Event]:
        """An event set whenever this process settles ``run_id``."""
        ...

    async def signal(self, run_id: str, name: str, payload: Any = None, *,
                     idempotency_key: str | None = None) -> bool:
        """Send a signal to a run."""
        ...

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run."""
        ...

    async def unroutable(self, row: RunRow) -> bool:
        """Whether no live worker's labels admit the run's routing selector."""
        ...

    @property
    def talk(self) -> Talk:
        """Reading events and streams, sending requests."""
        ...


class WorkflowHandle(Generic[R]):
    """A reference to one run, by id. Cheap to create; every method reads the database."""

    def __init__(self, engine: RunClient, run_id: str) -> None:
        self._engine = engine
        self.id = run_id

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id!r}>"

    async def status(self) -> RunInfo:
        """The run's current status (raises ``RunNotFound``)."""
        row = await self._row()
        info = await self._engine.payloads.run_info(row)
        if info.requires and await self._engine.unroutable(row):
            info = dataclasses.replace(info, unroutable=True)
        return info

    async def journal(self) -> list[JournalEntry]:
        """The run's journal, in sequence order (raises ``RunNotFound``)."""
        await self._row()
        entries = await self._engine.store.load_journal(self.id)
        return await self._engine.payloads.journal(entries)

    async def history(self) -> list[ResumeRecord]:
        """Every resume of the run, oldest first: how the run had ended (a failure with its
        error, or a block with its reason) and the journal entries the resume superseded — the
        failed step, its compensations, the steps they undid — which replay no longer reads
        but an auditor must see (raises ``RunNotFound``)."""
        await self._row()
        return [ResumeRecord.from_rows(row, entries)
                for row, entries in await self._engine.store.load_history(self.id)]

    async def incarnations(self) -> list[Incarnation]:
        """The run's incarnations that ended with ``ContinueAsNew``, oldest first, each with
        the arguments and version it ran with and its journal (raises ``RunNotFound``). The
        current incarnation is the run itself: ``status()`` and ``journal()``."""
        await self._row()
        rows = await self._engine.store.load_incarnations(self.id)
        return [Incarnation.from_rows(n, row, entries) for n, (row, entries) in enumerate(rows)]

    async def signal(self, name: str, payload: Any = None, *,
                     idempotency_key: str | None = None) -> bool:
        """Send a signal to this run; see ``Engine.signal``."""
        return await self._engine.signal(self.id, name, payload,
                                         idempotency_key=idempotency_key)

    async def cancel(self) -> bool:
        """Cancel this run; see ``Engine.cancel``."""
        return await self._engine.cancel(self.id)

    async def get_event(self, key: str, timeout: timedelta | float | None = None, *,
                        value_type: Any = Any) -> Any:
        """The current value of the run's event ``key`` (``perdure.set_event``), waiting until
        the run sets it; readable during and after the run.

        The wait is pushed (a write in this process, or a notification from another process
        on PostgreSQL), not polled. Raises ``EventTimeout`` after ``timeout`` seconds,
        ``RunFinished`` if the run ended without setting it, ``RunNotFound`` for an unknown
        run and ``InvalidConfiguration`` for a key that is not a non-empty string (no NUL).
        The value is decoded as ``value_type`` when given.
        """
        return await self._engine.talk.get_event(self.id, key, timeout=timeout,
                                                 value_type=value_type)

    async def events(self) -> dict[str, Any]:
        """Every event the run has set, with its current value (raises ``RunNotFound``)."""
        return await self._engine.talk.events(self.id)

    def read_stream(self, name: str, offset: int = 0, *,
                    item_type: Any = Any) -> AsyncIterator[Any]:
        """The items of the run's stream ``name`` from position ``offset``, in order, each
        once; a live tail that ends when the workflow closes the stream or the run finishes.

        ``async for item in handle.read_stream("tokens"): ...`` works from any process, and
        before the run has written anything. Raises ``RunNotFound`` (when iterated) for an
        unknown run and ``InvalidConfiguration`` (here) for a bad name or offset. Items are
        decoded as ``item_type`` when given.
        """
        return self._engine.talk.read_stream(self.id, name, offset, item_type=item_type)

    async def request(self, name: str, payload: Any = None, *,
                      timeout: timedelta | float | None = None, reply_type: Any = Any,
                      id: str | None = None) -> Any:
        """Send request ``name`` with ``payload`` to the run and return the workflow's reply
        (it takes the request with ``perdure.wait_for_request(name)``).

        Raises ``RequestTimeout`` after ``timeout`` seconds (the request is withdrawn if the
        run had not taken it yet), ``RequestRejected`` if the workflow rejected it,
        ``RunFinished`` if the run is (or ends) finished without replying, ``RunNotFound``,
        ``SerializationError`` (payload) and ``InvalidConfiguration`` (name). ``id`` makes
        the request idempotent: sending it again (say after a crash of the caller) waits
        for the same request's reply instead of sending another.
        """
        return await self._engine.talk.request(self.id, name, payload, timeout=timeout,
                                               reply_type=reply_type, request_id=id)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the run to finish and return its result.

        Raises ``WorkflowFailed`` (with the cause's type, message and traceback) if it failed,
        ``RunCancelled`` if it was cancelled, ``RunBlocked`` if it needs an operator,
        ``RunNotFound`` for an unknown id, ``TimeoutError`` after ``timeout`` seconds (a
        finite number; None waits as long as it takes), and ``PayloadUnavailable``
        (``DecryptionError``, ``BlobMissing``) when this process cannot read the stored outcome.
        """
        if timeout is not None:
            timeout = validate.seconds(timeout, "the result timeout", zero=True)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.005
        with self._engine.settled_event(self.id) as settled:
            while True:
                settled.clear()
                row = await self._row()
                outcome = await self._outcome(row)
                if outcome is not None:
                    value: R = outcome()
                    return value
                wait = delay if deadline is None else min(delay, deadline - loop.time())
                if wait <= 0:
                    raise TimeoutError(f"run {self.id!r} did not finish within {timeout} s "
                                       f"(it is {row.status})")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled.wait(), wait)
                # Runs settled in this process set the event at once; the growing delay is
                # the safety net for runs driven by another process.
                delay = min(delay * 2, 0.25)

    async def _outcome(self, row: RunRow) -> Any:
        """How the run ended, as a function returning or raising it (None: not yet). Raises
        ``PayloadUnavailable`` when this process cannot read the stored outcome."""
        status = RunStatus(row.status)
        if status is RunStatus.COMPLETED:
            codec = self._engine.codec_for(row.workflow, row.version)
            output = await self._engine.payloads.load(row.output)
            return lambda: codec.decode_result(output or "null")
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            text = await self._engine.payloads.load(row.error)
            err = ErrorInfo.from_json(text) or ErrorInfo("Error", "unknown")
            kind = RunCancelled if status is RunStatus.CANCELLED else WorkflowFailed
            exc = kind(self.id, cause_type=err.type, cause_message=err.message,
                       cause_traceback=err.traceback,
                       failed_compensations=failed_compensations(row.error))

            def fail() -> Any:
                raise exc

            return fail
        if status is RunStatus.BLOCKED:
            blocked = RunBlocked(self.id, row.error or "blocked")

            def block() -> Any:
                raise blocked

            return block
        return None

    async def _row(self) -> RunRow:
        row = await self._engine.store.get_run(self.id)
        if row is None:
            raise RunNotFound(self.id)
        return row

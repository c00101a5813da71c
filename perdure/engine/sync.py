"""A thin synchronous façade for applications without an event loop (Django, Flask, scripts).

No logic lives here: an async :class:`~perdure.engine.Engine` runs on an event loop in a
background thread, and each method submits the async call and waits for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from perdure.engine.engine import Engine
from perdure.engine.handle import WorkflowHandle
from perdure.flow.records import FlowReport
from perdure.flow.schedules import Schedule, ScheduleInfo
from perdure.records import JournalEntry, ResumeRecord, RunInfo, RunPage
from perdure.workflow.definitions import Workflow

__all__ = ["SyncEngine", "SyncHandle", "SyncSchedules"]

T = TypeVar("T")
R = TypeVar("R")


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="perdure-loop",
                                        daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncHandle(Generic[R]):
    """The blocking twin of :class:`~perdure.engine.handle.WorkflowHandle`."""

    def __init__(self, handle: WorkflowHandle[R], loop: _LoopThread) -> None:
        self._handle = handle
        self._loop = loop
        self.id = handle.id

    def result(self, timeout: float | None = None) -> R:
        """Block until the run finishes; see ``WorkflowHandle.result``."""
        return self._loop.call(self._handle.result(timeout))

    def status(self) -> RunInfo:
        """The run's status."""
        return self._loop.call(self._handle.status())

    def journal(self) -> list[JournalEntry]:
        """The run's journal."""
        return self._loop.call(self._handle.journal())

    def history(self) -> list[ResumeRecord]:
        """The run's resumes and what each superseded; see ``WorkflowHandle.history``."""
        return self._loop.call(self._handle.history())

    def get_event(self, key: str, timeout: timedelta | float | None = None, *,
                  value_type: Any = Any) -> Any:
        """Block until the run sets event ``key``; see ``WorkflowHandle.get_event``."""
        return self._loop.call(self._handle.get_event(key, timeout, value_type=value_type))

    def events(self) -> dict[str, Any]:
        """Every event's current value; see ``WorkflowHandle.events``."""
        return self._loop.call(self._handle.events())

    def request(self, name: str, payload: Any = None, *,
                timeout: timedelta | float | None = None, reply_type: Any = Any,
                id: str | None = None) -> Any:
        """Send a request and block for the reply; see ``WorkflowHandle.request``."""
        return self._loop.call(self._handle.request(name, payload, timeout=timeout,
                                                    reply_type=reply_type, id=id))

    def read_stream(self, name: str, offset: int = 0, *,
                    item_type: Any = Any) -> Iterator[Any]:
        """The stream's items, blocking for each; see ``WorkflowHandle.read_stream``. Close
        the iterator (or exhaust it) to stop reading."""
        items = self._handle.read_stream(name, offset, item_type=item_type)
        return _blocking_items(items, self._loop)

    def __getattr__(self, name: str) -> Any:
        # Later handle methods (signal, cancel, ...) get their blocking form for free.
        attr = getattr(self._handle, name)
        if not callable(attr):
            return attr

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._loop.call(attr(*args, **kwargs))

        return blocking


def _blocking_items(items: AsyncIterator[Any], loop: _LoopThread) -> Iterator[Any]:
    async def next_item() -> tuple[bool, Any]:
        try:
            return True, await items.__anext__()
        except StopAsyncIteration:
            return False, None

    try:
        while True:
            more, item = loop.call(next_item())
            if not more:
                return
            yield item
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            loop.call(aclose())


class SyncSchedules:
    """The blocking twin of ``engine.schedules`` (``SyncEngine.schedules``); see
    :class:`~perdure.engine.schedules.Schedules`."""

    def __init__(self, engine: SyncEngine) -> None:
        self._sync = engine

    def create(self, schedule: Schedule) -> ScheduleInfo:
        """Create (or update) a schedule."""
        return self._sync._call(self._sync.engine.schedules.create(schedule))

    def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule."""
        return self._sync._call(self._sync.engine.schedules.get(schedule_id))

    def pause(self, schedule_id: str) -> None:
        """Stop firing."""
        self._sync._call(self._sync.engine.schedules.pause(schedule_id))

    def resume(self, schedule_id: str) -> None:
        """Fire again from the next slot after now."""
        self._sync._call(self._sync.engine.schedules.resume(schedule_id))

    def trigger(self, schedule_id: str) -> SyncHandle[Any]:
        """Start a run of the schedule now."""
        handle = self._sync._call(self._sync.engine.schedules.trigger(schedule_id))
        assert self._sync._loop is not None
        return SyncHandle(handle, self._sync._loop)

    def backfill(self, schedule_id: str, start: datetime, end: datetime
                 ) -> list[SyncHandle[Any]]:
        """Start the runs of every slot from ``start`` to ``end``."""
        handles = self._sync._call(self._sync.engine.schedules.backfill(schedule_id, start,
                                                                        end))
        assert self._sync._loop is not None
        return [SyncHandle(h, self._sync._loop) for h in handles]

    def delete(self, schedule_id: str) -> bool:
        """Delete the schedule (its runs stay)."""
        return self._sync._call(self._sync.engine.schedules.delete(schedule_id))

    # Last: in the class body, ``list`` names this method from here on.
    def list(self) -> list[ScheduleInfo]:
        """Every schedule, by id."""
        return self._sync._call(self._sync.engine.schedules.list())


class SyncEngine:
    """The blocking twin of :class:`~perdure.engine.Engine`; takes the same arguments.

    Use it as a context manager, or call ``open()`` and ``close()``.
    """

    def __init__(self, url: str = "sqlite:///perdure.db", **options: Any) -> None:
        self._engine = Engine(url, **options)
        self._loop: _LoopThread | None = None

    @property
    def engine(self) -> Engine:
        """The async engine underneath."""
        return self._engine

    @property
    def schedules(self) -> SyncSchedules:
        """Create, list, pause, resume, trigger, backfill and delete schedules."""
        return SyncSchedules(self)

    def open(self) -> SyncEngine:
        """Start the background loop and open the engine."""
        if self._loop is None:
            self._loop = _LoopThread()
            try:
                self._loop.call(self._engine.open())
            except BaseException:
                self._loop.stop()
                self._loop = None
                raise
        return self

    def close(self) -> None:
        """Drain and close the engine, then stop the loop."""
        if self._loop is not None:
            try:
                self._loop.call(self._engine.close())
            finally:
                self._loop.stop()
                self._loop = None

    def __enter__(self) -> SyncEngine:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            from perdure.errors import PerdureError

            raise PerdureError("the engine is not open: use 'with SyncEngine(...)' or .open()")
        return self._loop.call(coro)

    def start(self, wf: Workflow[Any, R] | str, *args: Any, id: str | None = None,
              **kwargs: Any) -> SyncHandle[R]:
        """Start (or find, by ``id``) a run; see ``Engine.start``."""
        handle = self._call(self._engine.start(wf, *args, id=id, **kwargs))
        assert self._loop is not None
        return SyncHandle(handle, self._loop)

    def handle(self, run_id: str) -> SyncHandle[Any]:
        """A handle to an existing run."""
        if self._loop is None:
            self.open()
        assert self._loop is not None
        return SyncHandle(self._engine.handle(run_id), self._loop)

    def resume(self, run_id: str) -> SyncHandle[Any]:
        """Re-drive a blocked or failed run; see ``Engine.resume``."""
        handle = self._call(self._engine.resume(run_id))
        assert self._loop is not None
        return SyncHandle(handle, self._loop)

    def complete_callback(self, token: str, value: Any = None) -> None:
        """Complete a callback; see ``Engine.complete_callback``."""
        self._call(self._engine.complete_callback(token, value))

    def fail_callback(self, token: str, error: BaseException | str) -> None:
        """Fail a callback; see ``Engine.fail_callback``."""
        self._call(self._engine.fail_callback(token, error))

    def list_runs(self, *, limit: int = 100, cursor: str | None = None,
                  **filters: Any) -> RunPage:
        """One page of runs, newest first; see ``Engine.list_runs`` for the filters."""
        return self._call(self._engine.list_runs(limit=limit, cursor=cursor, **filters))

    def count_runs(self, **filters: Any) -> int:
        """How many runs match; see ``Engine.count_runs``."""
        return self._call(self._engine.count_runs(**filters))

    def prune(self, older_than: timedelta | str, **options: Any) -> int:
        """Delete old finished runs; see ``Engine.prune``."""
        return self._call(self._engine.prune(older_than, **options))

    def pause(self, run_id: str) -> bool:
        """Pause a run at its next durable await; see ``Engine.pause``."""
        return self._call(self._engine.pause(run_id))

    def fork(self, run_id: str, *, from_seq: int, id: str | None = None) -> SyncHandle[Any]:
        """A new run re-executing ``run_id`` from ``from_seq``; see ``Engine.fork``."""
        handle = self._call(self._engine.fork(run_id, from_seq=from_seq, id=id))
        assert self._loop is not None
        return SyncHandle(handle, self._loop)

    def queues(self) -> FlowReport:
        """Every queue and limit now; see ``Engine.queues``."""
        return self._call(self._engine.queues())

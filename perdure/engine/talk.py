"""The client side of talking to runs: reading events and streams, sending requests,
completing callbacks. Handles and the engine call it; it waits on the engine's :class:`Bell`.

Every wait reads the database, and waits for a ring only when there was nothing new; the
mark is taken before the read, so a write committed in between is never missed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from perdure.clock import Clock
from perdure.codec import functions as codec
from perdure.engine.bell import Bell
from perdure.errors import (
    CallbackAlreadyCompleted,
    CallbackNotFound,
    EventTimeout,
    InvalidConfiguration,
    RequestRejected,
    RequestTimeout,
    RunFinished,
    RunNotFound,
)
from perdure.records import ErrorInfo, RunStatus
from perdure.storage.port import Storage
from perdure.workflow.payloads import Payloads
from perdure.workflow.talk import check_name
from perdure.workflow.timers import seconds

__all__ = ["Talk"]

#: items fetched per read of a stream
BATCH = 256
#: positions are 32-bit integers in the database
MAX_OFFSET = 2**31 - 1


class Talk:
    """What handles ask of the engine to read from and talk to runs."""

    def __init__(self, store: Storage, clock: Clock, *, poll_interval: float,
                 check_open: Callable[[], None], wake_run: Callable[[str], None],
                 payloads: Payloads) -> None:
        self._store = store
        #: events and stream items are stored like every payload (codec, blob offload)
        self._payloads = payloads
        self._clock = clock
        self._check_open = check_open
        self._wake_run = wake_run
        self.bell = Bell(store, poll_interval=poll_interval)

    async def close(self) -> None:
        """Stop the bell's safety-net poll."""
        await self.bell.close()

    # -- events -----------------------------------------------------------------------------

    async def get_event(self, run_id: str, key: str, *, timeout: timedelta | float | None,
                        value_type: Any) -> Any:
        """The event's current value, waiting until the run sets it; see
        ``WorkflowHandle.get_event``."""
        self._check_open()
        _check_run(run_id)
        check_name("an event key", key)
        deadline = _deadline(timeout)
        async with self.bell.watch(run_id) as watch:
            while True:
                mark = watch.mark()
                status, found = await self._store.get_events(run_id, key)
                if status is None:
                    raise RunNotFound(run_id)
                if key in found:
                    return codec.loads(await self._payloads.load(found[key]) or "null", value_type)
                if RunStatus(status).terminal:
                    raise RunFinished(run_id, status, f"it never set event {key!r}")
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    raise EventTimeout(f"run {run_id!r} did not set event {key!r} within "
                                       f"{_seconds(timeout)} s")
                await watch.wait(mark, remaining)
                self._check_open()

    async def events(self, run_id: str) -> dict[str, Any]:
        """Every event's current value; see ``WorkflowHandle.events``."""
        self._check_open()
        _check_run(run_id)
        status, found = await self._store.get_events(run_id, None)
        if status is None:
            raise RunNotFound(run_id)
        return {k: codec.loads(await self._payloads.load(v) or "null") for k, v in found.items()}

    # -- streams ----------------------------------------------------------------------------

    def read_stream(self, run_id: str, name: str, offset: int, *,
                    item_type: Any) -> AsyncIterator[Any]:
        """The stream's items from ``offset``, live; see ``WorkflowHandle.read_stream``.
        The arguments are checked here, at the call; the database is read on iteration."""
        self._check_open()
        check_name("a stream name", name)
        if isinstance(offset, bool) or not isinstance(offset, int) \
                or not 0 <= offset <= MAX_OFFSET:
            raise InvalidConfiguration(f"a stream offset must be an int from 0 to "
                                       f"{MAX_OFFSET}, not {offset!r}")
        return self._items(run_id, name, offset, item_type)

    async def _items(self, run_id: str, name: str, offset: int,
                     item_type: Any) -> AsyncIterator[Any]:
        _check_run(run_id)
        async with self.bell.watch(run_id) as watch:
            while True:
                mark = watch.mark()
                status, items = await self._store.read_stream(run_id, name, offset, BATCH)
                if status is None:
                    raise RunNotFound(run_id)
                gap = False
                for position, value in items:
                    if position != offset:
                        # A later write committed before an earlier one (concurrent writes
                        # of one run): wait for the missing one, so order holds.
                        gap = True
                        break
                    if value is None:  # the end marker: the workflow closed the stream
                        return
                    yield codec.loads(await self._payloads.load(value) or "null", item_type)
                    offset += 1
                if not gap and len(items) == BATCH:
                    continue
                if RunStatus(status).terminal:
                    # The status was read before the items: every item the run wrote is in.
                    return
                await watch.wait(mark)
                self._check_open()

    # -- requests ---------------------------------------------------------------------------

    async def request(self, run_id: str, name: str, payload: Any, *,
                      timeout: timedelta | float | None, reply_type: Any,
                      request_id: str | None) -> Any:
        """Send a request and wait for its reply; see ``WorkflowHandle.request``."""
        self._check_open()
        _check_run(run_id)
        check_name("a request name", name)
        rid = uuid.uuid4().hex if request_id is None else check_name("a request id",
                                                                        request_id)
        deadline = _deadline(timeout)
        text = codec.dumps(payload)
        # Watch before sending: a reply that comes at once still rings.
        async with self.bell.watch(run_id) as watch:
            outcome = await self._store.send_request(run_id, rid, name, text,
                                                     self._clock.time())
            if outcome == "missing":
                raise RunNotFound(run_id)
            if outcome not in ("sent", "duplicate"):
                raise RunFinished(run_id, outcome)
            self._wake_run(run_id)
            while True:
                mark = watch.mark()
                status, state = await self._store.request_state(run_id, rid)
                if status is None:
                    raise RunNotFound(run_id)
                if state is None:
                    raise RequestTimeout(f"request {name!r} ({rid!r}) to run {run_id!r} was "
                                         "withdrawn by another caller that timed out")
                if state.replied:
                    return _reply(run_id, name, state.reply, state.error, reply_type)
                if RunStatus(status).terminal:
                    raise RunFinished(run_id, status, f"it did not reply to request {name!r}")
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return await self._give_up(run_id, rid, name, timeout, reply_type)
                await watch.wait(mark, remaining)
                self._check_open()

    async def _give_up(self, run_id: str, rid: str, name: str,
                       timeout: timedelta | float | None, reply_type: Any) -> Any:
        """The caller's timeout: withdraw the request if the run has not taken it (so it is
        never answered to no one); a reply that raced in is still returned."""
        if await self._store.withdraw_request(run_id, rid):
            raise RequestTimeout(f"run {run_id!r} did not take request {name!r} within "
                                 f"{_seconds(timeout)} s; the request was withdrawn")
        _, state = await self._store.request_state(run_id, rid)
        if state is not None and state.replied:
            return _reply(run_id, name, state.reply, state.error, reply_type)
        raise RequestTimeout(f"run {run_id!r} took request {name!r} but did not reply within "
                             f"{_seconds(timeout)} s; its reply will be kept: send the "
                             f"request again with id={rid!r} to wait for it")

    # -- callbacks --------------------------------------------------------------------------

    async def complete_callback(self, token: str, *, value: Any = None,
                                error: BaseException | str | None = None) -> None:
        """Complete (or, with ``error``, fail) a callback; see ``Engine.complete_callback``."""
        self._check_open()
        if not isinstance(token, str) or not token or "\x00" in token or len(token) > 255:
            raise InvalidConfiguration("a callback token must be the non-empty string "
                                       "that cb.token gave")
        text: str | None = None
        failure: str | None = None
        if error is None:
            text = codec.dumps(value)
        elif isinstance(error, BaseException):
            failure = ErrorInfo.from_exception(error).to_json()
        elif isinstance(error, str):
            failure = ErrorInfo("perdure.errors.CallbackFailed", error).to_json()
        else:
            raise InvalidConfiguration(f"a callback's error must be an exception or a string, "
                                       f"not {type(error).__name__}")
        outcome, run_id = await self._store.complete_callback(
            token, value=text, error=failure, now=self._clock.time())
        if outcome == "missing" or run_id is None:
            # (The token is a secret: it is not repeated in the message.)
            raise CallbackNotFound("no callback has this token")
        if outcome == "already":
            raise CallbackAlreadyCompleted(
                f"the callback of run {run_id!r} was already completed; a token is single-use")
        if outcome != "ok":
            raise RunFinished(run_id, outcome, "its callback can no longer be completed")
        self._wake_run(run_id)


def _check_run(run_id: str) -> None:
    """A run id no run can have (PostgreSQL text cannot hold NUL) is an unknown run, here,
    rather than a driver's encoding error."""
    if "\x00" in run_id:
        raise RunNotFound(run_id)


def _reply(run_id: str, name: str, reply: str | None, error: str | None,
           reply_type: Any) -> Any:
    if error is not None:
        raise RequestRejected(run_id, name, error)
    return codec.loads(reply or "null", reply_type)


def _seconds(timeout: timedelta | float | None) -> float:
    return 0.0 if timeout is None else seconds(timeout, "timeout")


def _deadline(timeout: timedelta | float | None) -> float | None:
    """When a caller's wait ends, on the event loop's clock (a caller's timeout is real time,
    as in ``handle.result``, not workflow time)."""
    if timeout is None:
        return None
    return asyncio.get_running_loop().time() + seconds(timeout, "timeout")


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - asyncio.get_running_loop().time()

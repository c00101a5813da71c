"""The PostgreSQL adapter's half for talking to runs: events, streams, requests, callbacks.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`, kept apart so the
adapter's core stays small. Each workflow-side write is one statement (see talk.sql): the
fenced journal entry, the row clients read, and a NOTIFY on the talk channel, which wakes the
readers of other processes at commit (:meth:`PostgresTalk.listen_talk`).

Retries after a lost connection: the fenced writes are idempotent (the same entry, an upsert
or an insert keyed by position or token), so they are retried; a consume is retried with its
``retry`` variant (as signals are); completing a callback is not (a retry could not tell its
own first attempt from someone else's), so ``StorageUnavailable`` reaches the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.records import JournalEntry
from perdure.storage.params import entry_params, lost
from perdure.storage.port import CallbackState, RequestState, TalkListener

if TYPE_CHECKING:
    from perdure.storage.postgres.pool import Connection
    from perdure.storage.postgres.session import Session

__all__ = ["PostgresTalk"]

T = TypeVar("T")
_TERMINAL = ("completed", "failed", "cancelled")


class PostgresTalk:
    """Events, streams, requests and callbacks on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        talk_channel: str
        _session: Session

        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetch(self, name: str, params: Mapping[str, Any], *,
                         retry: bool = True) -> list[Any]: ...

        async def _fetchrow(self, name: str, params: Mapping[str, Any], *,
                            retry: bool = True) -> Any: ...

    async def _journaled(self, query: str, run_id: str, epoch: int, worker: str,
                         entry: JournalEntry, **params: Any) -> None:
        row = await self._fetchrow(query, {**entry_params(run_id, epoch, worker, entry),
                                           **params})
        if not row["owned"]:
            raise lost(run_id, epoch)

    async def set_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                        key: str, value: str, now: float) -> None:
        """Journal the set and upsert the event's value, in one statement (fenced)."""
        await self._journaled("set_event", run_id, epoch, worker, entry, key=key, value=value,
                              now=float(now))

    async def get_events(self, run_id: str, key: str | None) -> tuple[str | None,
                                                                      dict[str, str]]:
        """The run's status and its events (or one), in one snapshot."""
        rows = await self._fetch("get_events", {"run_id": run_id, "key": key})
        if not rows:
            return None, {}
        return str(rows[0]["status"]), {r["key"]: r["value"] for r in rows
                                        if r["key"] is not None}

    async def write_stream(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                           stream: str, position: int, value: str | None,
                           now: float) -> None:
        """Journal the write and store the item, in one statement (fenced)."""
        await self._journaled("write_stream", run_id, epoch, worker, entry, stream=stream,
                              position=position, value=value, now=float(now))

    async def append_stream(self, run_id: str, epoch: int, worker: str, *, stream: str,
                            seq: int, value: str, now: float) -> int:
        """Store the item after the stream's last one, without a journal entry, in one
        statement (fenced)."""
        row = await self._fetchrow("append_stream", {
            "run_id": run_id, "epoch": epoch, "worker": worker, "stream": stream, "seq": seq,
            "value": value, "now": float(now)})
        if not row["owned"]:
            raise lost(run_id, epoch)
        return int(row["position"])

    async def read_stream(self, run_id: str, stream: str, offset: int, limit: int
                          ) -> tuple[str | None, list[tuple[int, str | None]]]:
        """The run's status and the items, in one snapshot."""
        rows = await self._fetch("read_stream", {"run_id": run_id, "stream": stream,
                                                 "offset": offset, "limit": limit})
        if not rows:
            return None, []
        return str(rows[0]["status"]), [(int(r["position"]), r["value"]) for r in rows
                                        if r["position"] is not None]

    async def send_request(self, run_id: str, request_id: str, name: str, payload: str,
                           now: float) -> str:
        """Buffer a request; wake the run if it is parked waiting for it. Retried after a
        lost connection: the request id makes a retry answer ``duplicate``."""
        row = await self._fetchrow("send_request", {"run_id": run_id, "request_id": request_id,
                                                    "name": name, "payload": payload,
                                                    "now": float(now)})
        if row is None:
            return "missing"
        if row["status"] in _TERMINAL:
            return str(row["status"])
        return "sent" if row["inserted"] else "duplicate"

    async def consume_request(self, run_id: str, epoch: int, worker: str, *, seq: int,
                              name: str, now: float) -> str | None:
        """Take the oldest pending request ``name`` and journal it, in one statement. A
        retry returns the request the first attempt consumed at ``seq``, if it committed."""
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "seq": seq,
                  "name": name, "now": float(now)}
        first = self._args("consume_request", {**params, "retry": False})
        again = self._args("consume_request", {**params, "retry": True})

        async def op(conn: Connection, retrying: bool) -> str | None:
            row = await conn.fetchrow(*(again if retrying else first))
            if not row["owned"]:
                raise lost(run_id, epoch)
            return None if row["output"] is None else str(row["output"])

        return await self._call(op, retry=True)

    async def reply_request(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                            *, request_id: str, reply: str | None, error: str | None,
                            now: float) -> None:
        """Journal the reply and record it on the request, in one statement (fenced)."""
        await self._journaled("reply_request", run_id, epoch, worker, entry,
                              request_id=request_id, reply=reply, reply_error=error,
                              now=float(now))

    async def request_state(self, run_id: str, request_id: str
                            ) -> tuple[str | None, RequestState | None]:
        """The run's status and the request."""
        row = await self._fetchrow("request_state", {"run_id": run_id,
                                                     "request_id": request_id})
        if row is None:
            return None, None
        if row["request_id"] is None:
            return str(row["status"]), None
        return str(row["status"]), RequestState(bool(row["taken"]), bool(row["replied"]),
                                                row["reply"], row["error"])

    async def withdraw_request(self, run_id: str, request_id: str) -> bool:
        """Delete the request unless the run took it (retried: a second delete finds none,
        and the caller then reads the request's state)."""
        rows = await self._fetch("withdraw_request", {"run_id": run_id,
                                                      "request_id": request_id})
        return bool(rows)

    async def create_callback(self, run_id: str, epoch: int, worker: str,
                              entry: JournalEntry, *, token: str, now: float) -> None:
        """Journal the callback's creation and insert its row, in one statement (fenced)."""
        await self._journaled("create_callback", run_id, epoch, worker, entry, token=token,
                              now=float(now))

    async def callback_state(self, token: str) -> CallbackState | None:
        """The callback's row."""
        row = await self._fetchrow("callback_state", {"token": token})
        if row is None:
            return None
        return CallbackState(str(row["run_id"]), int(row["seq"]), bool(row["completed"]),
                             row["value"], row["error"])

    async def complete_callback(self, token: str, *, value: str | None, error: str | None,
                                now: float) -> tuple[str, str | None]:
        """Complete or fail the callback once (one statement; not retried)."""
        row = await self._fetchrow("complete_callback", {"token": token, "value": value,
                                                         "error": error, "now": float(now)},
                                   retry=False)
        if row is None:
            return "missing", None
        run_id = str(row["run_id"])
        if row["status"] is None:  # the run's row is gone
            return "missing", None
        if row["completed"]:
            return "ok", run_id
        if row["was_completed"]:
            return "already", run_id
        if row["status"] in _TERMINAL:
            return str(row["status"]), run_id
        return "already", run_id

    async def listen_talk(self, listener: TalkListener) -> None:
        """LISTEN on the talk channel (on the session connection) and call ``listener`` with
        the run id of every notification from another process."""
        await self._session.listen_talk(self.talk_channel, listener)

    async def data_version(self) -> int:
        """Constant: readers are woken by notifications, not by polling this."""
        return 0

"""The SQLite adapter's half for talking to runs: events, streams, requests, callbacks.

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`, kept apart so the adapter's
core stays small. Each workflow-side write is one operation on the connection thread: a fenced
``put_entry`` and the row, in one transaction (the thread's group commit may add other runs'
writes to it, each under its own savepoint). SQLite has no push between processes: readers of
other processes find these commits through ``data_version()``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perdure.records import JournalEntry
from perdure.storage.params import entry_params, lost
from perdure.storage.port import CallbackState, RequestState, TalkListener

__all__ = ["SqliteTalk"]

_TERMINAL = ("completed", "failed", "cancelled")


class SqliteTalk:
    """Events, streams, requests and callbacks on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        _q: dict[str, str]

        def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                    ) -> asyncio.Future[Any]: ...

        async def _push(self) -> None: ...

    async def _journaled(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                         query: str, params: dict[str, Any]) -> None:
        """The fenced journal entry and one more statement, in one transaction."""
        put, sql = self._q["put_entry"], self._q[query]

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(put, entry_params(run_id, epoch, worker, entry)).rowcount == 0:
                raise lost(run_id, epoch)
            conn.execute(sql, params)

        await self._submit(op, write=True)

    async def set_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                        key: str, value: str, now: float) -> None:
        """Journal the set and upsert the event's value, atomically (fenced)."""
        await self._journaled(run_id, epoch, worker, entry, "upsert_event", {
            "run_id": run_id, "key": key, "value": value, "seq": entry.seq, "now": now})

    async def get_events(self, run_id: str, key: str | None) -> tuple[str | None,
                                                                      dict[str, str]]:
        """The run's status, then its events (or one)."""
        state, events = self._q["run_state"], self._q["get_events"]

        def op(conn: sqlite3.Connection) -> tuple[str | None, dict[str, str]]:
            row = conn.execute(state, {"run_id": run_id}).fetchone()
            if row is None:
                return None, {}
            found = conn.execute(events, {"run_id": run_id, "key": key}).fetchall()
            return str(row[0]), {k: v for k, v in found}

        result: tuple[str | None, dict[str, str]] = await self._submit(op, write=False)
        return result

    async def write_stream(self, run_id: str, epoch: int, worker: str, entry: JournalEntry, *,
                           stream: str, position: int, value: str | None,
                           now: float) -> None:
        """Journal the write and store the item, atomically (fenced)."""
        await self._journaled(run_id, epoch, worker, entry, "insert_stream_item", {
            "run_id": run_id, "stream": stream, "position": position, "seq": entry.seq,
            "value": value, "now": now})

    async def append_stream(self, run_id: str, epoch: int, worker: str, *, stream: str,
                            seq: int, value: str, now: float) -> int:
        """Store the item after the stream's last one, without a journal entry (fenced)."""
        sql = self._q["append_stream_item"]

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(sql, {"run_id": run_id, "stream": stream, "seq": seq,
                                     "value": value, "now": now, "epoch": epoch,
                                     "worker": worker}).fetchone()
            if row is None:
                raise lost(run_id, epoch)
            return int(row[0])

        position: int = await self._submit(op, write=True)
        return position

    async def read_stream(self, run_id: str, stream: str, offset: int, limit: int
                          ) -> tuple[str | None, list[tuple[int, str | None]]]:
        """The run's status, then the items. Status first: if the run had finished, every
        item it wrote is committed, so the item read that follows sees them all."""
        state, items = self._q["run_state"], self._q["read_stream"]

        def op(conn: sqlite3.Connection) -> tuple[str | None, list[tuple[int, str | None]]]:
            row = conn.execute(state, {"run_id": run_id}).fetchone()
            if row is None:
                return None, []
            found = conn.execute(items, {"run_id": run_id, "stream": stream, "offset": offset,
                                         "limit": limit}).fetchall()
            return str(row[0]), [(int(p), v) for p, v in found]

        result: tuple[str | None, list[tuple[int, str | None]]] = await self._submit(
            op, write=False)
        return result

    async def send_request(self, run_id: str, request_id: str, name: str, payload: str,
                           now: float) -> str:
        """Buffer a request; wake the run if it is parked waiting for it."""
        state, insert, wake = (self._q["run_state"], self._q["insert_request"],
                               self._q["wake_for_request"])

        def op(conn: sqlite3.Connection) -> str:
            row = conn.execute(state, {"run_id": run_id}).fetchone()
            if row is None:
                return "missing"
            if row[0] in _TERMINAL:
                return str(row[0])
            cur = conn.execute(insert, {"run_id": run_id, "request_id": request_id,
                                        "name": name, "payload": payload, "now": now})
            if cur.rowcount == 0:
                return "duplicate"
            conn.execute(wake, {"run_id": run_id, "name": name, "now": now})
            return "sent"

        result: str = await self._submit(op, write=True)
        if result == "sent":
            await self._push()
        return result

    async def consume_request(self, run_id: str, epoch: int, worker: str, *, seq: int,
                              name: str, now: float) -> str | None:
        """Take the oldest pending request ``name`` and journal it, in one transaction."""
        pick, mark, put = (self._q["next_request"], self._q["mark_request"],
                           self._q["put_entry"])

        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(pick, {"run_id": run_id, "name": name}).fetchone()
            if row is None:
                return None
            conn.execute(mark, {"id": row[0], "seq": seq})
            output = request_output(str(row[1]), str(row[2]))
            entry = JournalEntry(seq, "request", name, "completed", 1, output, finished_at=now)
            if conn.execute(put, entry_params(run_id, epoch, worker, entry)).rowcount == 0:
                raise lost(run_id, epoch)  # the transaction (or savepoint) undoes the mark
            return output

        result: str | None = await self._submit(op, write=True)
        return result

    async def reply_request(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                            *, request_id: str, reply: str | None, error: str | None,
                            now: float) -> None:
        """Journal the reply and record it on the request, atomically (fenced)."""
        await self._journaled(run_id, epoch, worker, entry, "answer_request", {
            "run_id": run_id, "request_id": request_id, "reply": reply, "reply_error": error,
            "now": now})

    async def request_state(self, run_id: str, request_id: str
                            ) -> tuple[str | None, RequestState | None]:
        """The run's status and the request."""
        row = await self._read_one("request_state", {"run_id": run_id,
                                                     "request_id": request_id})
        if row is None:
            return None, None
        if row[1] is None:
            return str(row[0]), None
        return str(row[0]), RequestState(bool(row[2]), bool(row[3]), row[4], row[5])

    async def withdraw_request(self, run_id: str, request_id: str) -> bool:
        """Delete the request unless the run took it."""
        sql = self._q["withdraw_request"]

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql, {"run_id": run_id, "request_id": request_id}).rowcount > 0

        result: bool = await self._submit(op, write=True)
        return result

    async def create_callback(self, run_id: str, epoch: int, worker: str,
                              entry: JournalEntry, *, token: str, now: float) -> None:
        """Journal the callback's creation and insert its row, atomically (fenced)."""
        await self._journaled(run_id, epoch, worker, entry, "insert_callback", {
            "token": token, "run_id": run_id, "seq": entry.seq, "now": now})

    async def callback_state(self, token: str) -> CallbackState | None:
        """The callback's row."""
        row = await self._read_one("callback_state", {"token": token})
        if row is None:
            return None
        return CallbackState(str(row[0]), int(row[1]), bool(row[2]), row[3], row[4])

    async def complete_callback(self, token: str, *, value: str | None, error: str | None,
                                now: float) -> tuple[str, str | None]:
        """Complete or fail the callback once; wake its run if it is parked waiting for it."""
        find, done, wake = (self._q["callback_run"], self._q["complete_callback"],
                            self._q["wake_for_callback"])

        def op(conn: sqlite3.Connection) -> tuple[str, str | None]:
            row = conn.execute(find, {"token": token}).fetchone()
            if row is None:
                return "missing", None
            run_id, seq, completed, status = str(row[0]), int(row[1]), bool(row[2]), row[3]
            if completed:
                return "already", run_id
            if status in _TERMINAL:
                return str(status), run_id
            conn.execute(done, {"token": token, "value": value, "error": error, "now": now})
            conn.execute(wake, {"run_id": run_id, "seq": seq, "now": now})
            return "ok", run_id

        result: tuple[str, str | None] = await self._submit(op, write=True)
        if result[0] == "ok":
            await self._push()
        return result

    async def listen_talk(self, listener: TalkListener) -> None:
        """SQLite has no push between processes: readers poll ``data_version()``."""

    async def data_version(self) -> int:
        """``PRAGMA data_version``: changes with every commit of another connection."""

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        version: int = await self._submit(op, write=False)
        return version

    async def _read_one(self, query: str, params: dict[str, Any]) -> Any:
        sql = self._q[query]

        def op(conn: sqlite3.Connection) -> Any:
            return conn.execute(sql, params).fetchone()

        return await self._submit(op, write=False)


def request_output(request_id: str, payload: str) -> str:
    """The journal output of a consumed request: its id and its (encoded) payload."""
    return f'{{"id":{json.dumps(request_id)},"payload":{payload}}}'

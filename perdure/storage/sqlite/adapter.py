"""The SQLite adapter of the storage port: SQL only, run on one connection thread."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import quote

from perdure.errors import InvalidConfiguration, StorageUnavailable
from perdure.hosts import pid_alive
from perdure.records import ClaimedRun, IncarnationRow, JournalEntry, ResumeRow, RunRow
from perdure.storage.params import (
    entry_params,
    history_rows,
    incarnation_rows,
    lost,
    timers_due,
)
from perdure.storage.port import NewRun, wf_key
from perdure.storage.sqlfiles import migrations, queries, validate_prefix
from perdure.storage.sqlite.blobs import SqliteBlobs
from perdure.storage.sqlite.errors import is_transient, storage_error
from perdure.storage.sqlite.flow import SqliteFlow, claimed_run, run_params
from perdure.storage.sqlite.listing import SqliteListing, run_row
from perdure.storage.sqlite.outbox import SqliteOutbox
from perdure.storage.sqlite.overview import SqliteOverview
from perdure.storage.sqlite.push import SqlitePush
from perdure.storage.sqlite.retention import SqliteRetention
from perdure.storage.sqlite.schedules import SqliteSchedules
from perdure.storage.sqlite.talk import SqliteTalk
from perdure.storage.sqlite.thread import DbThread

__all__ = ["SqliteStorage"]

Synchronous = Literal["full", "normal", "off"]


class SqliteStorage(SqliteFlow, SqliteTalk, SqliteSchedules, SqliteListing, SqliteRetention,
                    SqliteOverview, SqlitePush):
    """Storage on one SQLite file (or ``:memory:``), WAL mode, durable commits by default.

    ``synchronous="full"`` (the default) fsyncs every commit: a committed journal entry survives
    power loss. ``"normal"`` keeps crash safety for process crashes but may lose the last
    commits on power loss, for roughly an order of magnitude cheaper commits.
    """

    # Other processes' commits are found by polling PRAGMA data_version; a worker's socket
    # (push.py) only makes the poll come early, so it stays at ``poll_interval``.
    pushes = False

    def __init__(self, path: str, *, prefix: str = "perdure_", synchronous: Synchronous = "full",
                 busy_timeout: float = 30.0, create: bool = True) -> None:
        if synchronous not in ("full", "normal", "off"):
            raise InvalidConfiguration(
                f"synchronous must be 'full', 'normal' or 'off', not {synchronous!r}")
        self.path = path
        self.prefix = validate_prefix(prefix)
        self.synchronous = synchronous
        #: create the file if it does not exist (else opening raises InvalidConfiguration)
        self.create = create
        self._busy_ms = int(busy_timeout * 1000)
        self._q = queries("sqlite", self.prefix)
        self._db = DbThread(self._connect, busy_ms=self._busy_ms,
                            translate=lambda exc: storage_error(exc, path))
        self._data_version: int | None = None
        self._load: Callable[[], int] = lambda: 0
        self._applied: list[str] = []  # by the last open()
        self.outbox = SqliteOutbox(self._q, self._submit)
        self._labels: dict[str, str | None] = {}  # routing tokens of the workers registered

    # -- life cycle -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        target, uri = self.path, False
        if not self.create and self.path != ":memory:":
            # Opened read-write but never created: a mistyped path must not leave an empty
            # database behind (the CLI's read-only commands open this way).
            if not os.path.isfile(self.path):
                raise InvalidConfiguration(
                    f"no SQLite database at {self.path!r} (nothing was created): check the "
                    "path; 'perdure migrate' or a worker creates one")
            target, uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw", True
        try:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                                   uri=uri)
        except sqlite3.Error as exc:
            raise InvalidConfiguration(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if self.path != ":memory:":
                self._enter_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            if is_transient(exc):
                # A lock another process holds (even a frozen one), a full disk: the file is
                # right, waiting may cure it.
                raise StorageUnavailable(
                    f"cannot open SQLite database {self.path!r}: {exc}") from exc
            raise InvalidConfiguration(
                f"cannot open SQLite database {self.path!r}: {exc}") from exc
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs an exclusive lock and, unlike other statements,
        # fails at once instead of honouring busy_timeout when another process holds one (two
        # workers creating the database together): retry until the timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        delay = 0.001
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            if str(mode).lower() != "wal":
                raise InvalidConfiguration(
                    f"SQLite database {self.path!r} cannot use WAL mode (got {mode!r}); "
                    "is it on a network file system?")
            return

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so processes starting together apply
        # each migration once, in order.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.prefix}schema_version "
                         "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                         "applied_at REAL NOT NULL)")
            done = {v for (v,) in conn.execute(
                f"SELECT version FROM {self.prefix}schema_version")}
            applied: list[str] = []
            for mig in migrations("sqlite", self.prefix):
                if mig.version in done:
                    continue
                for statement in _statements(mig.sql):
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {self.prefix}schema_version (version, name, applied_at) "
                             "VALUES (?, ?, ?)", (mig.version, mig.name, time.time()))
                applied.append(mig.label)
            conn.execute("COMMIT")
            self._applied = applied
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                conn.execute("ROLLBACK")
            raise

    async def open(self) -> list[str]:
        """Start the connection thread (connects and migrates); the migrations applied."""
        self._applied = []
        await asyncio.to_thread(self._db.start)
        return self._applied

    async def close(self) -> None:
        """Commit what is queued and close."""
        self._close_wake()
        await asyncio.to_thread(self._db.stop)

    # -- helpers ----------------------------------------------------------------------------

    def _read(self, name: str, params: dict[str, Any], *, many: bool = True
              ) -> asyncio.Future[Any]:
        sql = self._q[name]

        def op(conn: sqlite3.Connection) -> Any:
            cur = conn.execute(sql, params)
            return cur.fetchall() if many else cur.fetchone()

        return self._submit(op, write=False)

    def _write(self, name: str, params: dict[str, Any], *, fenced: bool = False,
               returning: bool = False) -> asyncio.Future[Any]:
        sql = self._q[name]

        def op(conn: sqlite3.Connection) -> Any:
            cur = conn.execute(sql, params)
            if returning:
                return cur.fetchall()
            if fenced and cur.rowcount == 0:
                raise lost(params.get("run_id"), params.get("epoch"))
            return cur.rowcount

        return self._submit(op, write=True)

    # -- runs -------------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""
        row = await self._read("get_run", {"id": run_id}, many=False)
        return None if row is None else run_row(row)

    async def claim(self, *, worker: str, keys: Sequence[str], limit: int, now: float,
                    lease_until: float, caps: Sequence[str] = (),
                    due_by: float | None = None) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs in one statement, and journal the firing of
        their due timers in a second one, in the same transaction (``fire_timers``)."""
        claim, fire = self._q["claim"], self._q["fire_timers"]
        params = {"worker": worker, "keys": json.dumps(list(keys)), "limit": limit,
                  "now": now, "lease_until": lease_until,
                  "caps": json.dumps(list(caps)) if caps else "[]",
                  "due_by": now if due_by is None else due_by}

        def op(conn: sqlite3.Connection) -> list[ClaimedRun]:
            runs = [claimed_run(r) for r in conn.execute(claim, params).fetchall()]
            ids = timers_due(runs, now)
            if ids:
                conn.execute(fire, {"ids": json.dumps(ids), "now": now})
            return runs

        result: list[ClaimedRun] = await self._submit(op, write=True)
        return result

    async def claim_run(self, run_id: str, *, worker: str, keys: Sequence[str], now: float,
                        lease_until: float) -> ClaimedRun | None:
        """Take this one run if it is claimable now."""
        rows = await self._write("claim_run", {
            "run_id": run_id, "worker": worker, "keys": json.dumps(list(keys)), "now": now,
            "lease_until": lease_until}, returning=True)
        if not rows:
            return None
        return claimed_run(rows[0])

    async def count_due(self, keys: Sequence[str], now: float) -> int:
        """Parked runs whose wake-up time has come."""
        row = await self._read("count_due", {"keys": json.dumps(list(keys)), "now": now},
                               many=False)
        return int(row[0])

    async def next_wake(self, keys: Sequence[str], caps: Sequence[str] = ()) -> float | None:
        """Earliest due time among runs with one of ``keys``."""
        row = await self._read("next_wake", {"keys": json.dumps(list(keys)),
                                             "caps": json.dumps(list(caps)) if caps else "[]"},
                             many=False)
        return None if row is None else row[0]

    async def finish_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                         output: str | None, error: str | None, now: float) -> None:
        """Terminal (or blocked) status, fenced; wakes a parent parked waiting for it."""
        finish, wake = self._q["finish_run"], self._q["wake_parent"]
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "status": status,
                  "output": output, "error": error, "now": now}

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(finish, params).rowcount == 0:
                raise lost(run_id, epoch)
            return bool(conn.execute(wake, {"run_id": run_id, "now": now}).rowcount)

        if await self._submit(op, write=True):
            await self._push()  # the parent may be claimed by another process's worker

    async def park_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                       wake_at: float | None, now: float, error: str | None = None,
                       waiting_for: Sequence[str] = ()) -> None:
        """Release the run until ``wake_at`` or an awaited event, fenced."""
        await self._write("park_run", {"run_id": run_id, "epoch": epoch, "worker": worker,
                                       "status": status, "wake_at": wake_at, "now": now,
                                       "error": error,
                                       "waiting_for": json.dumps(list(waiting_for))},
                          fenced=True)

    async def send_signal(self, run_id: str, name: str, payload: str, key: str | None,
                          now: float) -> str:
        """Buffer a signal; wake the run if it is parked waiting for it."""
        state, insert, wake = (self._q["run_state"], self._q["insert_signal"],
                               self._q["wake_for_signal"])

        def op(conn: sqlite3.Connection) -> str:
            row = conn.execute(state, {"run_id": run_id}).fetchone()
            if row is None:
                return "missing"
            if row[0] in ("completed", "failed", "cancelled"):
                return str(row[0])
            cur = conn.execute(insert, {"run_id": run_id, "name": name, "payload": payload,
                                        "key": key, "now": now})
            if cur.rowcount == 0:
                return "duplicate"
            conn.execute(wake, {"run_id": run_id, "name": name, "now": now})
            return "sent"

        result: str = await self._submit(op, write=True)
        if result == "sent":
            await self._push()
        return result

    async def consume_signal(self, run_id: str, epoch: int, worker: str, *, seq: int,
                             name: str, now: float, retry: bool = False) -> str | None:
        """Consume the oldest pending signal ``name`` and journal it, in one transaction.
        (``retry`` changes nothing here: a transaction SQLite could not commit left nothing
        behind.)"""
        pick, mark, put = self._q["next_signal"], self._q["mark_signal"], self._q["put_entry"]

        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(pick, {"run_id": run_id, "name": name}).fetchone()
            if row is None:
                return None
            conn.execute(mark, {"id": row[0], "seq": seq})
            entry = JournalEntry(seq, "signal", name, "completed", 1, row[1], finished_at=now)
            if conn.execute(put, entry_params(run_id, epoch, worker, entry)).rowcount == 0:
                raise lost(run_id, epoch)  # the savepoint undoes the mark
            return str(row[1])

        result: str | None = await self._submit(op, write=True)
        return result

    async def start_child(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                          child: NewRun) -> None:
        """Create the child and journal its start, atomically."""
        insert, put = self._q["insert_run"], self._q["put_entry"]

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(put, entry_params(run_id, epoch, worker, entry)).rowcount == 0:
                raise lost(run_id, epoch)
            conn.execute(insert, run_params(child))

        await self._submit(op, write=True)

    async def request_cancel(self, run_id: str, now: float) -> list[str]:
        """Flag the run and its unfinished descendants."""
        rows = await self._write("request_cancel", {"run_id": run_id, "now": now},
                                 returning=True)
        if rows:
            await self._push()
        return [r[0] for r in rows]

    async def cancel_flags(self, worker: str) -> list[str]:
        """Cancellation requests for runs this worker drives."""
        rows = await self._read("cancel_flags", {"worker": worker})
        return [r[0] for r in rows]

    async def admin_transition(self, run_id: str, *, from_status: str, to_status: str,
                               supersede: Sequence[int], new_generation: bool,
                               now: float) -> bool:
        """Requeue a run for an operator, atomically: record the resume, move the superseded
        journal entries to the history, and (``new_generation``) start a new generation."""
        q = self._q
        seqs = json.dumps(list(supersede))

        def op(conn: sqlite3.Connection) -> bool:
            ended = conn.execute(q["admin_ending"], {"run_id": run_id,
                                                     "from_status": from_status}).fetchone()
            if ended is None:
                return False
            generation, status, error, ended_at = ended
            (resume_id,) = conn.execute(q["insert_resume"], {
                "run_id": run_id, "generation": generation, "status": status, "error": error,
                "ended_at": ended_at, "now": now}).fetchone()
            conn.execute(q["supersede_entries"], {"resume_id": resume_id, "run_id": run_id,
                                                  "seqs": seqs})
            conn.execute(q["delete_entries"], {"run_id": run_id, "seqs": seqs})
            conn.execute(q["admin_set_status"], {"run_id": run_id, "status": to_status,
                                                 "from_status": from_status, "now": now,
                                                 "bump": int(new_generation)})
            return True

        result: bool = await self._submit(op, write=True)
        if result:
            await self._push()
        return result

    async def load_history(self, run_id: str) -> list[tuple[ResumeRow, list[JournalEntry]]]:
        """The run's resumes, oldest first, each with the journal entries it superseded."""
        resumes = await self._read("load_resumes", {"run_id": run_id})
        entries = await self._read("load_superseded", {"run_id": run_id})
        return history_rows(resumes, entries)

    # -- journal ----------------------------------------------------------------------------

    async def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal in order."""
        rows = await self._read("load_journal", {"run_id": run_id})
        return [JournalEntry(*r) for r in rows]

    def put_entry(self, run_id: str, epoch: int, worker: str,
                  entry: JournalEntry) -> asyncio.Future[None]:
        """Fenced insert-or-replace of one journal entry, queued now."""
        return self._write("put_entry", entry_params(run_id, epoch, worker, entry), fenced=True)

    async def write_entry(self, run_id: str, epoch: int, worker: str,
                          entry: JournalEntry) -> None:
        """:meth:`put_entry`, awaited (the connection thread keeps the order either way)."""
        await self.put_entry(run_id, epoch, worker, entry)

    # -- workers ----------------------------------------------------------------------------

    async def heartbeat(self, worker: str, *, runs: Sequence[str], lease_until: float,
                        now: float, host: str, pid: int, pid_start: str | None,
                        serves: Sequence[str] = ()) -> dict[str, int]:
        """Renew the leases of the runs ``worker`` drives and its registration, at once."""
        renew, upsert = self._q["heartbeat_runs"], self._q["upsert_worker"]
        wake = self.wake_address

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            conn.execute(upsert, {"id": worker, "host": host, "pid": pid,
                                  "pid_start": pid_start, "now": now,
                                  "serves": json.dumps(list(serves)),
                                  "labels": self._labels.get(worker), "wake_addr": wake})
            rows = conn.execute(renew, {"worker": worker, "lease_until": lease_until,
                                        "runs": json.dumps(list(runs))}).fetchall()
            return {r[0]: r[1] for r in rows}

        result: dict[str, int] = await self._submit(op, write=True)
        return result

    async def register_worker(self, worker: str, *, host: str, pid: int,
                              pid_start: str | None, now: float,
                              serves: Sequence[str] = (),
                              labels: Sequence[str] = ()) -> None:
        """Announce a live worker: what it serves, its routing tokens, and its wake-up socket
        (bound here)."""
        self._labels[worker] = json.dumps(list(labels)) if labels else None
        await self._write("upsert_worker", {"id": worker, "host": host, "pid": pid,
                                            "pid_start": pid_start, "now": now,
                                            "serves": json.dumps(list(serves)),
                                            "labels": self._labels[worker],
                                            # (no other process can share an in-memory file)
                                            "wake_addr": None if self.path == ":memory:"
                                            else self._open_wake()})

    async def dead_workers(self, me: str, host: str) -> list[str]:
        """Workers on this host whose process is gone."""
        rows = await self._read("workers_on_host", {"host": host, "me": me})
        return [r[0] for r in rows if not pid_alive(r[1], r[2])]

    def set_load(self, active_runs: Callable[[], int]) -> None:
        """With at most one run in flight, writes commit on the caller's thread: there is
        nothing to group-commit with, and the hand-off to the DB thread is a third of a
        step's cost. Under load they go through the thread and share commits."""
        self._load = active_runs

    def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                ) -> asyncio.Future[Any]:
        return self._db.submit(op, write=write, inline=not write or self._load() <= 1)

    async def unregister_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly, and close its wake-up socket."""
        await self._write("delete_worker", {"id": worker})
        self._close_wake()

    async def expire_worker(self, worker: str) -> int:
        """Free a dead worker's runs now and forget it."""
        expire, forget = self._q["expire_worker_runs"], self._q["delete_worker"]

        def op(conn: sqlite3.Connection) -> int:
            n = conn.execute(expire, {"worker": worker}).rowcount
            conn.execute(forget, {"id": worker})
            return n

        result: int = await self._submit(op, write=True)
        if result:
            await self._push()
        return result

    # -- long-lived runs and changing code --------------------------------------------------

    async def continue_run(self, run_id: str, epoch: int, worker: str, *, version: str,
                           input: str, now: float) -> None:
        """Continue-as-new in one transaction (fenced): archive the incarnation, requeue."""
        q = self._q

        def op(conn: sqlite3.Connection) -> None:
            fence = {"run_id": run_id, "epoch": epoch, "worker": worker}
            ending = conn.execute(q["continue_ending"], fence).fetchone()
            if ending is None:
                raise lost(run_id, epoch)
            generation, workflow, old_version, old_input = ending
            (resume_id,) = conn.execute(q["insert_incarnation"], {
                "run_id": run_id, "generation": generation, "now": now, "input": old_input,
                "version": old_version}).fetchone()
            conn.execute(q["archive_journal"], {"resume_id": resume_id, "run_id": run_id})
            conn.execute(q["clear_journal"], {"run_id": run_id})
            conn.execute(q["forget_consumed_signals"], {"run_id": run_id})
            conn.execute(q["start_incarnation"], {
                **fence, "now": now, "input": input, "version": version,
                "wf_key": wf_key(workflow, version)})

        await self._submit(op, write=True)

    async def load_incarnations(self, run_id: str
                                ) -> list[tuple[IncarnationRow, list[JournalEntry]]]:
        """The incarnations that continued as new, oldest first, with their journals."""
        rows = await self._read("load_incarnations", {"run_id": run_id})
        entries = await self._read("load_incarnation_entries", {"run_id": run_id})
        return incarnation_rows(rows, entries)

    async def fork_run(self, source_id: str, new_id: str, *, upto_seq: int,
                       now: float) -> bool:
        """Create the fork and copy the journal before ``upto_seq``, in one transaction."""
        insert, copy = self._q["insert_fork"], self._q["copy_journal"]
        params = {"id": new_id, "source": source_id, "upto": upto_seq, "now": now}

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(insert, params).rowcount == 0:
                return False
            conn.execute(copy, params)
            return True

        created: bool = await self._submit(op, write=True)
        if created:
            await self._push()
        return created

    async def request_pause(self, run_id: str, now: float) -> str | None:
        """Pause a pending or parked run now; flag a running one."""
        rows = await self._write("request_pause", {"run_id": run_id, "now": now},
                                 returning=True)
        if rows:
            await self._push()
        return str(rows[0][0]) if rows else None

    async def unpause(self, run_id: str, now: float) -> bool:
        """Resume a paused run, or withdraw a pause request."""
        rows = await self._write("unpause", {"run_id": run_id, "now": now}, returning=True)
        if rows:
            await self._push()
        return bool(rows)

    async def pause_flags(self, worker: str) -> list[str]:
        """Pause requests for runs this worker drives."""
        return [r[0] for r in await self._read("pause_flags", {"worker": worker})]

    async def stranded_runs(self, *, live_after: float, workflow: str | None,
                            limit: int) -> list[RunRow]:
        """Unfinished runs no live worker serves."""
        rows = await self._read("stranded_runs", {"live_after": live_after,
                                                  "workflow": workflow, "limit": limit})
        return [run_row(r) for r in rows]

    async def stranded_summary(self, *, live_after: float) -> list[tuple[str, str, int]]:
        """Stranded runs counted by workflow and version."""
        rows = await self._read("stranded_summary", {"live_after": live_after})
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def served_keys(self, *, live_after: float) -> list[str]:
        """What the live workers serve."""
        return [str(r[0]) for r in await self._read("served_keys", {"live_after": live_after})]

    async def changed(self) -> bool:
        """Whether another connection committed since the last call (``PRAGMA data_version``
        changes only for other connections' commits, so our own writes never wake us)."""

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("PRAGMA data_version").fetchone()
            return int(row[0])

        version: int = await self._submit(op, write=False)
        before, self._data_version = self._data_version, version
        return before is not None and before != version

    async def database_time(self) -> float:
        """The host's clock: every process on a SQLite file shares it (the file must be on a
        local disk), so no query is needed, and none waits behind the connection thread."""
        return time.time()

    # -- blobs ------------------------------------------------------------------------------

    def blobs(self) -> SqliteBlobs:
        """The blob store on this database's ``blobs`` table."""
        return SqliteBlobs(self)

    def query(self, name: str) -> str:
        """A named query of this adapter (for its helpers, such as the blob store)."""
        return self._q[name]

    def submit_to_thread(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                         ) -> asyncio.Future[Any]:
        """Run ``op`` on the connection thread, never inline on the caller's."""
        return self._db.submit(op, write=write, inline=False)


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip()
                               for ln in buf.splitlines()):
        out.append(buf.strip())
    return out

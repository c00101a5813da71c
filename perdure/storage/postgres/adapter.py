"""The PostgreSQL adapter of the storage port: SQL only (in sql/postgres/), on asyncpg.

Pieces (each in its own module):

* ``postgres_pool``: a small FIFO pool of connections without session state, reopened after a
  server restart; every operation runs through :meth:`PostgresStorage._call`, which retries
  once after a broken connection when that is safe (see each method) and always retries a
  deadlock victim.
* ``postgres_writer``: group commit of journal writes (one statement per batch, per-entry
  fencing).
* ``postgres_session``: one dedicated connection for ``LISTEN`` (push wake-ups) and the
  workers' session advisory locks (instant failure detection).

Configuration: ``PostgresStorage(url, prefix=..., schema=..., pool_size=...)``; the same options
may be given in the URL's query (``postgresql://u:pw@host/db?schema=billing&pool_size=4``); other
query parameters go to asyncpg (``sslmode``, ``application_name``, server settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from perdure.errors import InvalidConfiguration
from perdure.hosts import pid_alive
from perdure.records import ClaimedRun, JournalEntry, RunRow
from perdure.storage.params import (
    entry_params,
    lost,
    new_run_params,
)
from perdure.storage.port import NewRun
from perdure.storage.postgres.blobs import PostgresBlobs
from perdure.storage.postgres.config import (
    GENERIC_PLAN,
    channel_name,
    compiled_queries,
    settings,
    validate_schema,
)
from perdure.storage.postgres.errors import storage_error
from perdure.storage.postgres.flow import PostgresFlow
from perdure.storage.postgres.lifecycle import PostgresLifecycle
from perdure.storage.postgres.listing import PostgresListing
from perdure.storage.postgres.outbox import PostgresOutbox
from perdure.storage.postgres.overview import PostgresOverview
from perdure.storage.postgres.pool import (
    Connection,
    Pool,
    StorageUnavailable,
    is_connection_error,
    is_transient,
)
from perdure.storage.postgres.retention import PostgresRetention
from perdure.storage.postgres.schedules import PostgresSchedules
from perdure.storage.postgres.session import Session
from perdure.storage.postgres.talk import PostgresTalk
from perdure.storage.postgres.writer import Entry, JournalWriter, columns
from perdure.storage.sqlfiles import migrations

__all__ = ["PostgresStorage", "StorageUnavailable", "validate_schema"]

log = logging.getLogger("perdure.storage")
T = TypeVar("T")

_TERMINAL = ("completed", "failed", "cancelled")
#: the parameter names of put_entry and put_entries, in the order of writer.Entry
_ENTRY_NAMES = ("run_id", "epoch", "worker", "seq", "kind", "name", "status", "attempts",
                "output", "error", "due_at", "started_at", "finished_at")


def _entry(run_id: str, epoch: int, worker: str, entry: JournalEntry) -> Entry:
    return (run_id, epoch, worker, entry.seq, entry.kind, entry.name, entry.status,
            entry.attempts, entry.output, entry.error, entry.due_at, entry.started_at,
            entry.finished_at)


class PostgresStorage(PostgresFlow, PostgresTalk, PostgresSchedules, PostgresListing,
                      PostgresRetention, PostgresOverview, PostgresLifecycle):
    """Storage on a PostgreSQL database (11+; tested on 15), shared by any number of workers.

    ``prefix`` (default ``perdure_``) and ``schema`` (default: the connection's search path)
    let several applications or tenants share one database. ``pool_size`` bounds this
    process's connections besides the session connection; ``connect_timeout`` bounds one
    connection attempt; after a connection loss, operations wait up to ``reconnect_timeout``
    seconds for the server to come back before raising :class:`StorageUnavailable`.
    ``restart_grace``: see :meth:`dead_workers`.
    """

    pushes = True  # LISTEN/NOTIFY

    def __init__(self, url: str, *, prefix: str = "perdure_", schema: str | None = None,
                 pool_size: int | None = None, connect_timeout: float | None = None,
                 reconnect_timeout: float | None = None, restart_grace: float = 5.0,
                 max_batch: int = 500) -> None:
        self.url = url
        cfg = settings(url, prefix=prefix, schema=schema, pool_size=pool_size,
                       connect_timeout=connect_timeout, reconnect_timeout=reconnect_timeout,
                       restart_grace=restart_grace)
        self.settings = cfg
        self.prefix, self.schema = cfg.prefix, cfg.schema
        self.qualified_prefix = cfg.qualified_prefix
        self.restart_grace = cfg.restart_grace
        self.channel = channel_name(cfg.schema, cfg.prefix)
        self.talk_channel = channel_name(cfg.schema, cfg.prefix, "talk")
        self._redacted = cfg.redacted
        self._sql = compiled_queries(cfg.qualified_prefix)
        self._common = {"channel": self.channel, "talk_channel": self.talk_channel,
                        "namespace": cfg.namespace}
        self._pool = Pool(self._connect, size=cfg.pool_size,
                          reconnect_timeout=cfg.reconnect_timeout, describe=cfg.redacted)
        self._writer = JournalWriter(self._write_batch, self._write_one, max_batch=max_batch)
        lock_sql, lock_names = self._sql["lock_worker"]
        unlock_sql, _ = self._sql["unlock_worker"]
        assert lock_names == ("namespace", "worker")
        self._session = Session(self._connect, channel=self.channel, lock_sql=lock_sql,
                                unlock_sql=unlock_sql, namespace=cfg.namespace,
                                own_pids=lambda: self._pool.server_pids)
        self._opened = False
        self._ownership_locks: dict[str, asyncio.Lock] = {}
        self.outbox = PostgresOutbox(self)
        self._labels: dict[str, list[str] | None] = {}  # routing tokens of our workers

    def __repr__(self) -> str:
        return f"<PostgresStorage {self._redacted!r} prefix={self.qualified_prefix!r}>"

    # -- life cycle -------------------------------------------------------------------------

    async def _connect(self) -> Connection:
        return await asyncpg.connect(self.settings.dsn, timeout=self.settings.connect_timeout)

    async def open(self) -> list[str]:
        """Connect and apply pending migrations under an advisory lock; the migrations applied.

        Fails fast with a typed error: ``StorageUnavailable`` for a server that is down or
        unreachable, ``InvalidConfiguration`` for bad credentials or a missing database."""
        if self._opened:
            return []
        try:
            conn = await self._connect()
        except Exception as exc:
            # A server that is down or restarting may come back (a worker waits for it); bad
            # credentials or a missing database will not.
            kind = StorageUnavailable if is_transient(exc) else InvalidConfiguration
            raise kind(
                f"cannot connect to PostgreSQL at {self._redacted}: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}") from None
        try:
            applied = await self._migrate(conn)
        except Exception as exc:
            conn.terminate()
            if is_connection_error(exc, conn):
                raise StorageUnavailable(
                    f"lost the connection to {self._redacted} while preparing the schema: "
                    f"{type(exc).__name__}: {self._scrub(str(exc))}") from None
            if isinstance(exc, asyncpg.PostgresError):
                raise InvalidConfiguration(
                    f"cannot prepare the Perdure schema ({self.qualified_prefix}) on "
                    f"{self._redacted}: {type(exc).__name__}: {self._scrub(str(exc))}") from None
            raise
        self._pool.adopt(conn)
        self._writer.start()
        self._opened = True
        return applied

    async def _migrate(self, conn: Connection) -> list[str]:
        p, version_table = self.qualified_prefix, f"{self.qualified_prefix}schema_version"
        wanted = migrations("postgres", p)
        # Fast path (every start after the first): nothing to do, no lock to queue for. Every
        # wanted version must be there, not only the newest: migrations from branches merged
        # out of number order leave gaps that a later release fills.
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", version_table):
            have = {r[0] for r in await conn.fetch(f"SELECT version FROM {version_table}")}
            if all(m.version in have for m in wanted):
                return []
        applied: list[str] = []
        async with conn.transaction():
            # Many workers starting at once: one applies each migration, the others wait for
            # the lock, then find it done. The lock is released at commit.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"perdure:migrate:{self.schema or ''}:{self.prefix}")
            if self.schema and not await conn.fetchval(
                    "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema):
                await conn.execute(f'CREATE SCHEMA "{self.schema}"')
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {version_table} (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at double precision NOT NULL)")
            done = {r[0] for r in await conn.fetch(f"SELECT version FROM {version_table}")}
            for mig in wanted:
                if mig.version in done:
                    continue
                await conn.execute(mig.sql.replace("{n}", self.prefix))
                await conn.execute(
                    f"INSERT INTO {version_table} (version, name, applied_at) "
                    "VALUES ($1, $2, extract(epoch FROM clock_timestamp()))",
                    mig.version, mig.name)
                log.info("applied migration %s to %s", mig.label, self._redacted)
                applied.append(mig.label)
        return applied

    async def close(self) -> None:
        """Commit queued journal writes, drop the session (its locks and LISTEN) and close."""
        if not self._opened:
            return
        self._opened = False
        await self._writer.close()
        await self._session.close()
        await self._pool.close()

    def _scrub(self, text: str) -> str:
        password = self.settings.password
        return text.replace(password, "***") if password else text

    # -- running statements -----------------------------------------------------------------

    def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        sql, names = self._sql[name]
        return (sql, *[params[n] if n in params else self._common[n] for n in names])

    async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                    retry: bool) -> T:
        """Run ``op(conn, retrying)`` on a pooled connection.

        A deadlock victim or serialization failure (rolled back, nothing happened) is re-run.
        After a broken connection, ``op`` is re-run on a new connection if ``retry`` (the
        caller vouches that it is idempotent, or ``op`` checks, given ``retrying``, whether an
        earlier attempt committed), again and again while connections keep breaking (a storm
        of terminated sessions), for up to ``reconnect_timeout`` seconds; else
        :class:`StorageUnavailable` is raised. Every other driver error becomes a typed one
        (see ``postgres/errors.py``).
        """
        retried = False
        rollbacks = 0
        give_up = time.monotonic() + self.settings.reconnect_timeout
        delay = 0.0
        while True:
            conn = await self._pool.acquire()
            try:
                result = await op(conn, retried)
            except asyncio.CancelledError:
                self._pool.release(conn, discard=True)  # it may be mid-statement
                raise
            except Exception as exc:
                broken = is_connection_error(exc, conn)
                self._pool.release(conn, discard=broken or not isinstance(
                    exc, asyncpg.PostgresError))
                if broken:
                    self._pool.discard_idle()
                if isinstance(exc, asyncpg.TransactionRollbackError) and rollbacks < 5:
                    rollbacks += 1
                    continue
                if broken and retry and time.monotonic() + delay < give_up:
                    log.info("PostgreSQL connection lost (%s); retrying", type(exc).__name__)
                    retried = True
                    await asyncio.sleep(delay)
                    delay = min(max(delay * 2, 0.01), 0.5)
                    continue
                error = storage_error(exc, self._redacted, self._scrub, broken=broken)
                if error is exc:
                    raise
                raise error from exc
            self._pool.release(conn)
            return result

    async def _fetch(self, name: str, params: Mapping[str, Any], *,
                     retry: bool = True) -> list[Any]:
        args = self._args(name, params)

        async def op(conn: Connection, retrying: bool) -> list[Any]:
            rows: list[Any] = await conn.fetch(*args)
            return rows

        return await self._call(op, retry=retry)

    async def _fetchrow(self, name: str, params: Mapping[str, Any], *,
                        retry: bool = True) -> Any:
        rows = await self._fetch(name, params, retry=retry)
        return rows[0] if rows else None

    # -- runs -------------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> bool:
        """Insert a pending run; False when the id exists (idempotent start). Retried after a
        lost connection: a retry of a committed insert answers False, which the engine treats
        as "already started" (same workflow), so the run exists once either way."""
        row = await self._fetchrow("insert_run", new_run_params(run))
        return bool(row["created"])

    async def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""
        row = await self._fetchrow("get_run", {"id": run_id})
        return None if row is None else RunRow(*row)

    async def claim(self, *, worker: str, keys: Sequence[str], limit: int, now: float,
                    lease_until: float, caps: Sequence[str] = (),
                    due_by: float | None = None) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs in one statement (FOR UPDATE SKIP LOCKED).

        If the connection breaks mid-claim, the claim may have committed without our knowing
        which runs it took; before retrying, runs this worker claimed at ``now`` are handed
        back (claimable at once) so none stays owned by a worker that does not drive it."""
        params = {"worker": worker, "keys": list(keys), "limit": limit, "now": float(now),
                  "lease_until": float(lease_until), "caps": list(caps),
                  "due_by": float(now if due_by is None else due_by)}
        claim, give_back = self._args("claim", params), self._args("claim_give_back", params)

        async def op(conn: Connection, retrying: bool) -> list[Any]:
            # One round trip opens the transaction and asks for the generic plan (see
            # GENERIC_PLAN); on an error it is rolled back before the connection goes back.
            await conn.execute(f"BEGIN; {GENERIC_PLAN}")
            try:
                if retrying:
                    await conn.execute(*give_back)
                rows: list[Any] = await conn.fetch(*claim)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return rows

        async with self._ownership(worker):
            rows = await self._call(op, retry=True)
        return [ClaimedRun(*r) for r in rows]

    async def claim_run(self, run_id: str, *, worker: str, keys: Sequence[str], now: float,
                        lease_until: float) -> ClaimedRun | None:
        """Take this one run if it is claimable now (a claim cut off by a lost connection is
        handed back first, as in :meth:`claim`)."""
        params = {"run_id": run_id, "worker": worker, "keys": list(keys), "now": float(now),
                  "lease_until": float(lease_until)}
        claim = self._args("claim_run", params)
        give_back = self._args("claim_run_give_back", params)

        async def op(conn: Connection, retrying: bool) -> list[Any]:
            if retrying:
                await conn.execute(*give_back)
            rows: list[Any] = await conn.fetch(*claim)
            return rows

        async with self._ownership(worker):
            rows = await self._call(op, retry=True)
        return ClaimedRun(*rows[0]) if rows else None

    async def count_due(self, keys: Sequence[str], now: float) -> int:
        """Parked runs whose wake-up time has come."""
        row = await self._fetchrow("count_due", {"keys": list(keys), "now": float(now)})
        return int(row[0])

    def _ownership(self, worker: str) -> asyncio.Lock:
        """Claims and heartbeats of one worker never overlap. The worker compares the runs a
        heartbeat reports with the runs it drives, and stops those it no longer owns; a claim
        committing while a heartbeat is in flight would be reported as lost (and its run,
        halted but still owned, would be renewed forever). On SQLite the one connection
        thread orders them; here two connections would not. The lock is released by the
        coroutine that then, with no await in between, compares (or spawns the claimed
        runs)."""
        lock = self._ownership_locks.get(worker)
        if lock is None:
            lock = self._ownership_locks[worker] = asyncio.Lock()
        return lock

    async def next_wake(self, keys: Sequence[str], caps: Sequence[str] = ()) -> float | None:
        """Earliest due time among runs with one of ``keys`` (through the partial indexes)."""
        row = await self._fetchrow("next_wake", {"keys": list(keys), "caps": list(caps)})
        return None if row is None or row[0] is None else float(row[0])

    async def finish_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                         output: str | None, error: str | None, now: float) -> None:
        """Terminal (or blocked) status, fenced; wakes a parent parked waiting for it. A
        retry after a lost acknowledgement first checks whether the first attempt committed."""
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "status": status,
                  "output": output, "error": error, "now": float(now)}
        finish, applied = self._args("finish_run", params), self._args("finish_applied", params)

        async def op(conn: Connection, retrying: bool) -> None:
            row = await conn.fetchrow(*finish)
            if row["finished"]:
                return
            if retrying and await conn.fetchval(*applied):
                return
            raise lost(run_id, epoch)

        await self._call(op, retry=True)

    async def park_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                       wake_at: float | None, now: float, error: str | None = None,
                       waiting_for: Sequence[str] = ()) -> None:
        """Release the run until ``wake_at`` or an awaited event, fenced. Two statements in
        one transaction: lock the run's row, then park it checking the wake condition with a
        snapshot taken after the lock (see park_lock in queries.sql: no lost wake-up)."""
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "status": status,
                  "wake_at": wake_at, "now": float(now), "error": error,
                  "waiting_for": list(waiting_for)}
        lock, park = self._args("park_lock", params), self._args("park_run", params)
        applied = self._args("finish_applied", params)
        # Waiting on limits: their rows are share-locked first (lock order: limits, then
        # runs), so that no release slips between the check in park_run and the park.
        limits = sorted(w[6:] for w in waiting_for if w.startswith("limit:"))
        limit_lock = self._args("park_limits", {"names": limits}) if limits else None

        async def op(conn: Connection, retrying: bool) -> None:
            async with conn.transaction():
                if limit_lock is not None:
                    await conn.fetch(*limit_lock)
                if await conn.fetchval(*lock) is None:
                    if retrying and await conn.fetchval(*applied):
                        return
                    raise lost(run_id, epoch)
                await conn.fetchrow(*park)

        await self._call(op, retry=True)

    async def send_signal(self, run_id: str, name: str, payload: str, key: str | None,
                          now: float) -> str:
        """Buffer a signal; wake the run if it is parked waiting for it (one statement that
        locks the run's row first: see queries.sql). Retried after a lost connection only
        with an idempotency key (a retry then answers ``duplicate`` if the first committed);
        without one a retry could deliver the signal twice, so StorageUnavailable is raised
        and the caller decides."""
        row = await self._fetchrow("send_signal", {"run_id": run_id, "name": name,
                                                   "payload": payload, "key": key,
                                                   "now": float(now)},
                                   retry=key is not None)
        if row is None:
            return "missing"
        if row["status"] in _TERMINAL:
            return str(row["status"])
        return "sent" if row["inserted"] else "duplicate"

    async def consume_signal(self, run_id: str, epoch: int, worker: str, *, seq: int,
                             name: str, now: float, retry: bool = False) -> str | None:
        """Consume the oldest pending signal ``name`` and journal it, in one statement. A
        retry returns the signal the first attempt consumed at ``seq``, if it committed."""
        params = {"run_id": run_id, "epoch": epoch, "worker": worker, "seq": seq,
                  "name": name, "now": float(now)}
        first = self._args("consume_signal", {**params, "retry": False})
        again = self._args("consume_signal", {**params, "retry": True})

        async def op(conn: Connection, retrying: bool) -> str | None:
            row = await conn.fetchrow(*(again if retrying or retry else first))
            if not row["owned"]:
                raise lost(run_id, epoch)
            return None if row["payload"] is None else str(row["payload"])

        return await self._call(op, retry=True)

    async def start_child(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                          child: NewRun) -> None:
        """Create the child and journal its start, atomically and fenced (idempotent)."""
        params = entry_params(run_id, epoch, worker, entry)
        params["entry_status"] = params.pop("status")
        params.update({f"child_{k}": v for k, v in new_run_params(child).items()})
        row = await self._fetchrow("start_child", params)
        if not row["owned"]:
            raise lost(run_id, epoch)

    async def request_cancel(self, run_id: str, now: float) -> list[str]:
        """Flag the run and its unfinished descendants (idempotent): lock the root's row,
        then flag the tree read with a snapshot taken after the lock."""
        params = {"run_id": run_id, "now": float(now)}
        lock, flag = self._args("cancel_lock", params), self._args("request_cancel", params)

        async def op(conn: Connection, retrying: bool) -> list[str]:
            async with conn.transaction():
                if await conn.fetchval(*lock) is None:
                    return []
                return [r[0] for r in await conn.fetch(*flag)]

        return await self._call(op, retry=True)

    async def cancel_flags(self, worker: str) -> list[str]:
        """Cancellation requests for runs this worker drives. Read only after another
        process's ``cancel`` notification (or a reconnect): every other notification would
        otherwise cost each worker this read and the next (the worker looks after each)."""
        return await self._flags("cancel", worker)

    async def _flags(self, kind: str, worker: str) -> list[str]:
        if not self._session.take_flag(kind):
            return []
        try:
            rows = await self._fetch(f"{kind}_flags", {"worker": worker})
        except BaseException:
            self._session.flags.add(kind)  # not read: read it next time
            raise
        return [r[0] for r in rows]

    # -- journal ----------------------------------------------------------------------------

    async def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal in order."""
        return [JournalEntry(*r) for r in await self._fetch("load_journal", {"run_id": run_id})]

    def put_entry(self, run_id: str, epoch: int, worker: str,
                  entry: JournalEntry) -> asyncio.Future[None]:
        """Fenced insert-or-replace of one journal entry, queued now, group-committed."""
        return self._writer.submit(_entry(run_id, epoch, worker, entry))

    async def write_entry(self, run_id: str, epoch: int, worker: str,
                          entry: JournalEntry) -> None:
        """Fenced insert-or-replace of one journal entry, committed before returning: in the
        caller's task with the single-row statement when no other write is queued or in
        flight (see writer.py), else group-committed with them."""
        await self._writer.write_now(_entry(run_id, epoch, worker, entry))

    async def _write_one(self, entry: Entry) -> bool:
        """One entry, one statement (put_entry); False if fenced off. Retried after a lost
        connection, like a batch. Executed for its status (``INSERT 0 1``, or ``0`` when
        fenced off) rather than fetched: no row to decode."""
        args = self._args("put_entry", dict(zip(_ENTRY_NAMES, entry, strict=True)))

        async def op(conn: Connection, retrying: bool) -> bool:
            status: str = await conn.execute(*args)
            return status.endswith(" 1")

        return await self._call(op, retry=True)

    async def _write_batch(self, batch: Sequence[Entry]) -> set[tuple[str, int]]:
        """One group commit. Retried after a lost connection: an upsert of the same values
        is idempotent, and the fence is checked again."""
        cols = columns(batch)
        rows = await self._fetch("put_entries", dict(zip(_ENTRY_NAMES, cols, strict=True)))
        return {(r[0], r[1]) for r in rows}

    # -- workers ----------------------------------------------------------------------------

    async def heartbeat(self, worker: str, *, runs: Sequence[str], lease_until: float,
                        now: float, host: str, pid: int, pid_start: str | None,
                        serves: Sequence[str] = ()) -> dict[str, int]:
        """Renew all of ``worker``'s leases and its registration in one statement."""
        async with self._ownership(worker):
            rows = await self._fetch("heartbeat", {
                "worker": worker, "lease_until": float(lease_until), "now": float(now),
                "host": host, "pid": pid, "pid_start": pid_start, "runs": list(runs),
                "serves": list(serves), "labels": self._labels.get(worker)})
        return {r[0]: r[1] for r in rows}

    async def register_worker(self, worker: str, *, host: str, pid: int,
                              pid_start: str | None, now: float,
                              serves: Sequence[str] = (), labels: Sequence[str] = ()) -> None:
        """Take the worker's session advisory lock (held on the session connection for the
        worker's life), then announce it. Lock first: a registered worker whose lock is free
        is dead to everyone else."""
        try:
            await self._session.start()
            await self._session.lock(worker)
        except Exception as exc:
            error = storage_error(exc, self._redacted, self._scrub)
            if error is exc:
                raise
            raise error from exc
        self._labels[worker] = list(labels) if labels else None
        await self._fetch("upsert_worker", {"id": worker, "host": host, "pid": pid,
                                            "pid_start": pid_start, "now": float(now),
                                            "serves": list(serves),
                                            "labels": self._labels[worker]})

    async def unregister_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly, then release its lock."""
        await self._fetch("delete_worker", {"id": worker})
        await self._session.unlock(worker)

    async def dead_workers(self, me: str, host: str) -> list[str]:
        """Registered workers whose advisory lock is free (their connection is gone), and
        workers on this host whose process is gone.

        Right after a server restart every lock is free, the live workers' included, until
        their session connections come back; for ``restart_grace`` seconds after the server
        started, a free lock alone does not make a worker dead (declaring live workers dead
        would only cost work — their runs are fenced — but it would cost all of it)."""
        rows = await self._fetch("workers_liveness", {"me": me})

        def dead(r: Any) -> bool:
            if r["host"] == host and not pid_alive(r["pid"], r["pid_start"]):
                return True  # same host: the process is gone (or its pid was recycled)
            return not r["locked"] and r["uptime"] >= self.restart_grace

        return [r["id"] for r in rows if dead(r)]

    def set_load(self, active_runs: Callable[[], int]) -> None:
        """Not used: every statement is a network round trip either way."""

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every NOTIFY from another process (and once after the listener
        reconnected)."""
        self._session.wake = wake
        if self._opened and not self._session.started:
            self._session.start_soon()

    def listen_outbox(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on another process's ``outbox`` notification (and after the listener
        reconnected); starts the session connection if nothing did yet."""
        self._session.outbox_wake = wake
        if self._opened and not self._session.started:
            self._session.start_soon()

    async def expire_worker(self, worker: str) -> int:
        """Free a dead worker's runs now (and wake the workers) and forget it."""
        row = await self._fetchrow("expire_worker", {"worker": worker})
        return int(row["freed"])

    # -- flags and notifications ------------------------------------------------------------

    async def pause_flags(self, worker: str) -> list[str]:
        """Pause requests for runs this worker drives (read only after another process's
        ``pause`` notification or a reconnect, as :meth:`cancel_flags`)."""
        return await self._flags("pause", worker)

    async def changed(self) -> bool:
        """Whether a notification from another process arrived since the last call."""
        notified, self._session.notified = self._session.notified, False
        return notified

    async def database_time(self) -> float:
        """The server's clock (``clock_timestamp()``, not the transaction's start time)."""
        row = await self._fetchrow("database_time", {})
        return float(row[0])

    # -- blobs ------------------------------------------------------------------------------

    def blobs(self) -> PostgresBlobs:
        """The blob store on this database's ``blobs`` table."""
        return PostgresBlobs(self)

    async def fetch_row(self, name: str, params: Mapping[str, Any]) -> Any:
        """The first row of a named, idempotent query (retried after a lost connection)."""
        return await self._fetchrow(name, params)

"""The SQLite adapter's half for flow control: queues, limits, routing, debounce.

A mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`. Each claim and each take is
one operation on the connection thread, so its statements run in one write transaction, and
SQLite has a single writer: what they count cannot change under them, across processes too.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perdure.records import ClaimedRun
from perdure.storage.params import lost, new_run_params
from perdure.storage.port import FlowClaim, FlowStats, LimitDef, LimitTake, NewRun, QueueDef
from perdure.storage.tokens import KEEP, rate_slot

__all__ = ["SqliteFlow", "claimed_run", "run_params"]


def claimed_run(r: Sequence[Any]) -> ClaimedRun:
    """A claimed run as the claim statements return it (SQLite has no booleans)."""
    return ClaimedRun(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], bool(r[9]),
                      r[10], r[11], r[12], bool(r[13]))

#: candidates a queue claim reads past runs of keys at their per-key limit
SCAN = 256


def run_params(run: NewRun) -> dict[str, Any]:
    """``insert_run``'s parameters with the selector as JSON text."""
    params = new_run_params(run)
    params["requires"] = None if params["requires"] is None else json.dumps(params["requires"])
    params["debounce"] = int(params["debounce"])
    params["vtime"] = params["now"]  # a queued run's place is set by queue_slot instead
    return params


class SqliteFlow:
    """Queues, limits and routing on SQLite (see the storage port)."""

    if TYPE_CHECKING:
        _q: dict[str, str]

        def _submit(self, op: Callable[[sqlite3.Connection], Any], *, write: bool
                    ) -> asyncio.Future[Any]: ...

        def _insert_tags(self, conn: sqlite3.Connection, params: Mapping[str, Any]) -> None: ...

        async def _push(self) -> None: ...

    async def create_run(self, run: NewRun) -> bool:
        """Insert a run (a queued one gets its place in line in the same transaction); False
        when the id exists (idempotent start)."""
        q = self._q
        params = run_params(run)

        def op(conn: sqlite3.Connection) -> bool:
            if run.queue is not None:
                if conn.execute(q["run_exists"], {"id": run.id}).fetchone() is not None:
                    return False
                (params["vtime"],) = conn.execute(q["queue_slot"], {
                    "queue": run.queue, "key": run.key or "", "share": run.share}).fetchone()
            if conn.execute(q["insert_run"], params).rowcount == 0:
                return False
            self._insert_tags(conn, params)
            return True

        result: bool = await self._submit(op, write=True)
        if result:
            await self._push()  # the workers of other processes claim it now, not at a poll
        return result

    async def create_debounced(self, run: NewRun) -> str:
        """Start or coalesce a debounced run; the id of the run the start went to."""
        q = self._q
        params = run_params(run)

        def op(conn: sqlite3.Connection) -> str:
            if run.queue is not None:
                (params["vtime"],) = conn.execute(q["queue_slot"], {
                    "queue": run.queue, "key": run.key or "", "share": run.share}).fetchone()
            (run_id,) = conn.execute(q["debounce_run"], params).fetchone()
            if run_id == run.id:  # a new run (a coalesced start keeps the first start's tags)
                self._insert_tags(conn, params)
            return str(run_id)

        result: str = await self._submit(op, write=True)
        await self._push()  # its due time moved: the other processes' workers look again
        return result

    async def define_flow(self, queues: Sequence[QueueDef], limits: Sequence[LimitDef],
                          now: float) -> None:
        """Write the definitions."""
        q = self._q

        def op(conn: sqlite3.Connection) -> None:
            for d in queues:
                conn.execute(q["define_queue"], {
                    "name": d.name, "concurrency": d.concurrency, "per_worker": d.per_worker,
                    "per_key": d.per_key, "rate_count": d.rate_count,
                    "rate_per": d.rate_per, "weights": d.weights, "now": now})
            for lim in limits:
                conn.execute(q["define_limit"], {
                    "name": lim.name, "concurrency": lim.concurrency,
                    "rate_count": lim.rate_count, "rate_per": lim.rate_per, "now": now})

        await self._submit(op, write=True)

    async def claim_flow(self, *, worker: str, keys: Sequence[str], queues: Sequence[str],
                         caps: Sequence[str], limit: int, clock: Callable[[], float],
                         lease: float, plain: bool = False,
                         plain_first: bool = False) -> FlowClaim:
        """Promote due runs into their lines, then take from the lines within the limits
        (and, with ``plain``, make the plain claim in the same transaction)."""
        q = self._q
        keys_j, queues_j, caps_j = (json.dumps(list(keys)), json.dumps(list(queues)),
                                    json.dumps(list(caps)))

        def plain_claim(conn: sqlite3.Connection, room: int,
                        take: dict[str, Any]) -> list[ClaimedRun]:
            if room <= 0:
                return []
            rows = conn.execute(q["claim"], {**take, "keys": keys_j, "limit": room,
                                             "caps": caps_j}).fetchall()
            return [claimed_run(r) for r in rows]

        def op(conn: sqlite3.Connection) -> FlowClaim:
            now = clock()  # in the write transaction: nobody else can start a run now
            take = {"worker": worker, "now": now, "lease_until": now + lease, "due_by": now}
            conn.execute(q["flow_promote"], {"now": now, "keys": keys_j, "queues": queues_j,
                                             "caps": caps_j})
            runs: list[ClaimedRun] = plain_claim(conn, limit, take) if plain_first else []
            retry: list[float] = []
            for name in queues:
                room = limit - len(runs)
                if room <= 0:
                    break
                scope = f"queue:{name}"
                ids = [r[0] for r in conn.execute(q["queue_pick"], {
                    "queue": name, "scope": scope, "worker": worker, "now": now,
                    "limit": room, "scan": SCAN, "keys": keys_j, "caps": caps_j})]
                taken = self._line_take(conn, ids, take)
                runs += [c for c, _ in taken]
                fresh = [c.id for c in (c for c, _ in taken) if c.epoch == 1]
                if fresh:
                    conn.execute(q["queue_started"], {"scope": scope, "now": now,
                                                      "queue": name,
                                                      "fresh": json.dumps(fresh)})
                    conn.execute(q["prune_queue_grants"], {"scope": scope, "now": now,
                                                           "queue": name, "keep": KEEP})
                if taken:
                    conn.execute(q["queue_clock"], {"queue": name,
                                                    "vtime": max(v for _, v in taken)})
                if len(ids) < room:
                    at = self._queue_rate_next(conn, name, scope, now)
                    if at is not None:
                        retry.append(at)
            if caps and len(runs) < limit:
                ids = [r[0] for r in conn.execute(q["routed_pick"], {
                    "keys": keys_j, "caps": caps_j, "limit": limit - len(runs)})]
                runs += [c for c, _ in self._line_take(conn, ids, take)]
            if plain and not plain_first:
                runs += plain_claim(conn, limit - len(runs), take)
            (due,) = conn.execute(q["flow_next_wake"], {"keys": keys_j, "queues": queues_j,
                                                        "caps": caps_j}).fetchone()
            if due is not None:
                retry.append(float(due))
            return FlowClaim(runs, min(retry) if retry else None)

        result: FlowClaim = await self._submit(op, write=True)
        return result

    def _line_take(self, conn: sqlite3.Connection, ids: list[str], params: dict[str, Any]
                   ) -> list[tuple[ClaimedRun, float]]:
        if not ids:
            return []
        rows = conn.execute(self._q["line_take"], {**params, "ids": json.dumps(ids)})
        return [(claimed_run(r), float(r[14])) for r in rows]

    def _queue_rate_next(self, conn: sqlite3.Connection, name: str, scope: str,
                         now: float) -> float | None:
        """When the queue's rate window next has room, if it is full now."""
        row = conn.execute(self._q["queue_rate_used"], {"queue": name, "scope": scope,
                                                        "now": now}).fetchone()
        if row is None or row[2] < row[0]:
            return None
        return self._rate_at(conn, scope, now, float(row[1]), int(row[0]), int(row[2]), 0)

    def _rate_at(self, conn: sqlite3.Connection, scope: str, now: float, per: float,
                 count: int, used: int, ahead: int) -> float:
        index, extra = rate_slot(used, count, ahead)
        row = conn.execute(self._q["rate_next"], {"scope": scope, "now": now, "per": per,
                                                  "k": index}).fetchone()
        base = now + per if row is None else float(row[0])
        return base + extra * per / count

    async def take_limits(self, run_id: str, epoch: int, worker: str, *, seq: int,
                          names: Sequence[str], clock: Callable[[], float]) -> LimitTake:
        """Take a token of every limit, or register as waiting and say when to retry."""
        q = self._q

        def op(conn: sqlite3.Connection) -> LimitTake:
            now = clock()  # in the write transaction: the grant's time is now
            ident = {"run_id": run_id, "now": now}
            if conn.execute(q["owns_run"], {"run_id": run_id, "epoch": epoch,
                                            "worker": worker}).fetchone() is None:
                raise lost(run_id, epoch)
            blocked: list[str] = []
            waits: list[float] = []
            semaphore = False
            rates: list[tuple[str, int, float, int]] = []
            for name in sorted(set(names)):
                row = conn.execute(q["limit_row"], {"name": name}).fetchone()
                if row is None:
                    continue  # defined by the engine before use: cannot happen
                concurrency, count, per = row
                if concurrency is not None:
                    (held,) = conn.execute(q["holds_in_use"], {"name": name}).fetchone()
                    if held >= concurrency:
                        blocked.append(name)
                        semaphore = True
                        continue
                if count is not None:
                    (used,) = conn.execute(q["rate_used"], {"scope": f"limit:{name}",
                                                            "now": now, "per": per}).fetchone()
                    if used >= count:
                        blocked.append(name)
                        rates.append((name, int(count), float(per), int(used)))
            if not blocked:
                for name in sorted(set(names)):
                    concurrency, count, per = conn.execute(q["limit_row"],
                                                           {"name": name}).fetchone()
                    if concurrency is not None:
                        conn.execute(q["take_hold"], {**ident, "name": name, "seq": seq,
                                                      "epoch": epoch})
                    if count is not None:
                        scope = f"limit:{name}"
                        conn.execute(q["take_grant"], {**ident, "scope": scope})
                        conn.execute(q["prune_grants"], {"scope": scope,
                                                         "before": now - max(per, KEEP)})
                    conn.execute(q["drop_waiter"], {"run_id": run_id, "name": name})
                return LimitTake(True)
            for name in blocked:
                conn.execute(q["add_waiter"], {**ident, "name": name})
            for name, count, per, used in rates:
                (ahead,) = conn.execute(q["waiters_ahead"], {"name": name,
                                                             "run_id": run_id}).fetchone()
                waits.append(self._rate_at(conn, f"limit:{name}", now, per, count, used,
                                           int(ahead)))
            # A semaphore frees up by a push (the release wakes the run); a rate at its time.
            retry = None if semaphore else max(waits)
            return LimitTake(False, tuple(blocked), retry)

        result: LimitTake = await self._submit(op, write=True)
        return result

    async def release_limits(self, run_id: str, *, seq: int | None, epoch: int,
                             now: float) -> None:
        """Release slots and wake the runs parked on them, oldest first."""
        q = self._q

        def op(conn: sqlite3.Connection) -> int:
            woken = 0
            names = {r[0] for r in conn.execute(q["release_holds"], {
                "run_id": run_id, "seq": seq, "epoch": epoch})}
            for name in sorted(names):
                row = conn.execute(q["limit_row"], {"name": name}).fetchone()
                if row is None or row[0] is None:
                    continue
                (held,) = conn.execute(q["holds_in_use"], {"name": name}).fetchone()
                free = int(row[0]) - int(held)
                if free > 0:
                    conn.execute(q["forget_waiters"], {"name": name})
                    woken += conn.execute(q["wake_waiters"], {
                        "name": name, "now": now, "free": free}).rowcount
            return woken

        if await self._submit(op, write=True):
            await self._push()  # runs parked on the limit may wait in another process

    async def cancel_unstarted(self, run_id: str, *, error: str, now: float) -> bool:
        """End a never-started run in a line, cancelled."""
        sql = self._q["cancel_unstarted"]

        def op(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(sql, {"run_id": run_id, "error": error, "now": now})
            return bool(rows.fetchall())

        result: bool = await self._submit(op, write=True)
        return result

    async def flow_stats(self, now: float, live_since: float) -> FlowStats:
        """The figures of ``perdure queues``."""
        q = self._q

        def op(conn: sqlite3.Connection) -> FlowStats:
            params = {"now": now, "live_since": live_since}
            queues = [tuple(r) for r in conn.execute(q["queue_stats"], params)]
            routed = tuple(conn.execute(q["routed_stats"], params).fetchone())
            limits = [tuple(r) for r in conn.execute(q["limit_stats"], params)]
            return FlowStats(queues, routed, limits)

        result: FlowStats = await self._submit(op, write=False)
        return result

    async def routable(self, requires: Sequence[str], live_since: float) -> bool:
        """Whether a live worker's labels admit ``requires``."""
        q = self._q

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(q["routable"], {"requires": json.dumps(list(requires)),
                                               "live_since": live_since}).fetchone()
            return bool(row[0])

        result: bool = await self._submit(op, write=False)
        return result

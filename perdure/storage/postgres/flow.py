"""The PostgreSQL adapter's half for flow control: queues, limits, routing, debounce.

A mixin of :class:`~perdure.storage.postgres.adapter.PostgresStorage`. A claim from the lines
and a take or a release of a limit are each one transaction of a few statements, the first of
which locks the queue or limit rows they count (see flow.sql): under READ COMMITTED a count is
only exact when nobody can add to it before we commit.

Retries after a lost connection: a claim first hands back what an unacknowledged attempt may
have taken (as the plain claim does); a take that may have committed is found by its hold or
grant; a release and the definitions are idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from perdure.records import ClaimedRun
from perdure.storage.params import lost, new_run_params
from perdure.storage.port import FlowClaim, FlowStats, LimitDef, LimitTake, NewRun, QueueDef
from perdure.storage.postgres.config import GENERIC_PLAN
from perdure.storage.tokens import KEEP, rate_slot

if TYPE_CHECKING:
    import asyncio

    from perdure.storage.postgres.pool import Connection

__all__ = ["PostgresFlow"]

T = TypeVar("T")
#: candidates a queue claim reads past runs of keys at their per-key limit
SCAN = 256


class PostgresFlow:
    """Queues, limits and routing on PostgreSQL (see the storage port)."""

    if TYPE_CHECKING:
        def _args(self, name: str, params: Mapping[str, Any]) -> tuple[Any, ...]: ...

        async def _call(self, op: Callable[[Connection, bool], Awaitable[T]], *,
                        retry: bool) -> T: ...

        async def _fetchrow(self, name: str, params: Mapping[str, Any], *,
                            retry: bool = True) -> Any: ...

        def _ownership(self, worker: str) -> asyncio.Lock: ...

    async def create_debounced(self, run: NewRun) -> str:
        """Start or coalesce a debounced run; the id of the run the start went to. Retried
        after a lost connection: a retry finds the same run gathering starts and updates it
        to the same values."""
        row = await self._fetchrow("debounce_run", new_run_params(run))
        return str(row["id"])

    async def define_flow(self, queues: Sequence[QueueDef], limits: Sequence[LimitDef],
                          now: float) -> None:
        """Write the definitions (idempotent upserts)."""
        queue_args = [self._args("define_queue", {
            "name": d.name, "concurrency": d.concurrency, "per_worker": d.per_worker,
            "per_key": d.per_key, "rate_count": d.rate_count, "rate_per": d.rate_per,
            "weights": d.weights, "now": float(now)}) for d in queues]
        limit_args = [self._args("define_limit", {
            "name": lim.name, "concurrency": lim.concurrency, "rate_count": lim.rate_count,
            "rate_per": lim.rate_per, "now": float(now)}) for lim in limits]

        async def op(conn: Connection, retrying: bool) -> None:
            async with conn.transaction():
                # Name order, as the claims and takes lock these rows.
                for args in sorted(queue_args, key=lambda a: str(a[1])):
                    await conn.execute(*args)
                for args in sorted(limit_args, key=lambda a: str(a[1])):
                    await conn.execute(*args)

        await self._call(op, retry=True)

    async def claim_flow(self, *, worker: str, keys: Sequence[str], queues: Sequence[str],
                         caps: Sequence[str], limit: int, clock: Callable[[], float],
                         lease: float, plain: bool = False,
                         plain_first: bool = False) -> FlowClaim:
        """Lock the queues, promote due runs into their lines, take from the lines (and, with
        ``plain``, make the plain claim in the same transaction)."""
        ids = {"worker": worker, "keys": list(keys), "queues": list(queues),
               "caps": list(caps)}
        due = self._args("flow_next_wake", ids)
        last: list[float] = []  # the time stamp of the attempt before a retry

        async def op(conn: Connection, retrying: bool) -> FlowClaim:
            if retrying and last:
                await conn.execute(*self._args("claim_give_back", {**ids, "now": last[-1]}))
            runs: list[ClaimedRun] = []
            retry: list[float] = []
            async with conn.transaction():
                await conn.execute(GENERIC_PLAN)  # the claims' plans are not re-made each time
                # Promote (as of now) and lock, in one statement.
                locked = await conn.fetch(*self._args("flow_lock_queues",
                                                      {**ids, "now": float(clock())}))
                # Read once the queues are ours: a start enters a rate window when it happens.
                now = float(clock())
                last.append(now)
                base = {**ids, "now": now, "lease_until": now + lease, "due_by": now}
                if plain and plain_first:
                    rows = await conn.fetch(*self._args("claim", {**base, "limit": limit}))
                    runs += [ClaimedRun(*r) for r in rows]
                for q in locked:
                    room = limit - len(runs)
                    if room <= 0:
                        break
                    scope = f"queue:{q['name']}"
                    rows = await conn.fetch(*self._args("queue_claim", {
                        **base, "queue": q["name"], "scope": scope, "limit": room,
                        "scan": SCAN, "keep": KEEP}))
                    taken = [ClaimedRun(*r) for r in rows]
                    runs += taken
                    if q["rate_count"] is not None and len(taken) < room:
                        used = int(q["used"]) + sum(1 for c in taken if c.epoch == 1)
                        if used >= q["rate_count"]:
                            retry.append(await self._rate_at(
                                conn, scope, now, float(q["rate_per"]), int(q["rate_count"]),
                                used, 0))
                if caps and len(runs) < limit:
                    rows = await conn.fetch(*self._args("routed_claim", {
                        **base, "limit": limit - len(runs)}))
                    runs += [ClaimedRun(*r) for r in rows]
                if plain and not plain_first and len(runs) < limit:
                    rows = await conn.fetch(*self._args("claim", {
                        **base, "limit": limit - len(runs)}))
                    runs += [ClaimedRun(*r) for r in rows]
                nxt = locked[0]["next_due"] if locked else await conn.fetchval(*due)
            if nxt is not None:
                retry.append(float(nxt))
            return FlowClaim(runs, min(retry) if retry else None)

        async with self._ownership(worker):
            return await self._call(op, retry=True)

    async def _rate_at(self, conn: Connection, scope: str, now: float, per: float,
                       count: int, used: int, ahead: int) -> float:
        index, extra = rate_slot(used, count, ahead)
        at = await conn.fetchval(*self._args("rate_next", {"scope": scope, "now": now,
                                                           "per": per, "k": index}))
        base = now + per if at is None else float(at)
        return base + extra * per / count

    async def take_limits(self, run_id: str, epoch: int, worker: str, *, seq: int,
                          names: Sequence[str], clock: Callable[[], float]) -> LimitTake:
        """Lock the limits, count, and take a token of each or register as a waiter."""
        wanted = sorted(set(names))

        async def op(conn: Connection, retrying: bool) -> LimitTake:
            async with conn.transaction():
                limits = await conn.fetch(*self._args("lock_limits", {"names": wanted}))
                now = float(clock())  # the limits are ours: the grant's time is now
                ident = {"run_id": run_id, "now": now}
                if await conn.fetchval(*self._args("owns_run", {
                        "run_id": run_id, "epoch": epoch, "worker": worker})) is None:
                    raise lost(run_id, epoch)
                blocked: list[str] = []
                semaphore = False
                rates: list[tuple[str, int, float, int]] = []
                for lim in limits:
                    name = lim["name"]
                    if lim["concurrency"] is not None:
                        held = await conn.fetchval(*self._args("holds_in_use",
                                                               {"name": name}))
                        if held >= lim["concurrency"]:
                            blocked.append(name)
                            semaphore = True
                            continue
                    if lim["rate_count"] is not None:
                        per = float(lim["rate_per"])
                        used = await conn.fetchval(*self._args("rate_used", {
                            "scope": f"limit:{name}", "now": now, "per": per}))
                        if used >= lim["rate_count"]:
                            blocked.append(name)
                            rates.append((name, int(lim["rate_count"]), per, int(used)))
                if not blocked:
                    for lim in limits:
                        name = lim["name"]
                        if lim["concurrency"] is not None:
                            await conn.execute(*self._args("take_hold", {
                                **ident, "name": name, "seq": seq, "epoch": epoch}))
                        if lim["rate_count"] is not None:
                            scope = f"limit:{name}"
                            await conn.execute(*self._args("take_grant",
                                                           {**ident, "scope": scope}))
                            keep = max(float(lim["rate_per"]), KEEP)
                            await conn.execute(*self._args("prune_grants", {
                                "scope": scope, "before": now - keep}))
                        await conn.execute(*self._args("drop_waiter",
                                                       {"run_id": run_id, "name": name}))
                    return LimitTake(True)
                waits: list[float] = []
                for name in blocked:
                    await conn.execute(*self._args("add_waiter", {**ident, "name": name}))
                for name, count, per, used in rates:
                    ahead = await conn.fetchval(*self._args("waiters_ahead", {
                        "name": name, "run_id": run_id}))
                    waits.append(await self._rate_at(conn, f"limit:{name}", now, per,
                                                     count, used, int(ahead)))
                return LimitTake(False, tuple(blocked), None if semaphore else max(waits))

        # A retry after a lost acknowledgement may take a second grant of a rate for the same
        # attempt: conservative (the window only fills sooner), never over the limit.
        return await self._call(op, retry=True)

    async def release_limits(self, run_id: str, *, seq: int | None, epoch: int,
                             now: float) -> None:
        """Release slots and wake the runs parked on them, oldest first (idempotent)."""

        async def op(conn: Connection, retrying: bool) -> None:
            async with conn.transaction():
                # Which limits: read without deleting first, so the locks come first.
                held = await conn.fetch(*self._args("holds_of_run", {
                    "run_id": run_id, "seq": seq, "epoch": epoch}))
                names = sorted({r["name"] for r in held})
                if not names:
                    return
                limits = await conn.fetch(*self._args("lock_limits", {"names": names}))
                await conn.execute(*self._args("release_holds", {
                    "run_id": run_id, "seq": seq, "epoch": epoch}))
                for lim in limits:
                    if lim["concurrency"] is None:
                        continue
                    name = lim["name"]
                    in_use = await conn.fetchval(*self._args("holds_in_use", {"name": name}))
                    free = int(lim["concurrency"]) - int(in_use)
                    if free > 0:
                        await conn.execute(*self._args("forget_waiters", {"name": name}))
                        await conn.fetchrow(*self._args("wake_waiters", {
                            "name": name, "now": float(now), "free": free}))

        await self._call(op, retry=True)

    async def cancel_unstarted(self, run_id: str, *, error: str, now: float) -> bool:
        """End a never-started run in a line, cancelled (idempotent: a retry finds it
        cancelled and changes nothing, so it answers False, which only skips a wake-up)."""
        row = await self._fetchrow("cancel_unstarted", {"run_id": run_id, "error": error,
                                                        "now": float(now)})
        return row is not None

    async def flow_stats(self, now: float, live_since: float) -> FlowStats:
        """The figures of ``perdure queues``."""
        params = {"now": float(now), "live_since": float(live_since)}

        async def op(conn: Connection, retrying: bool) -> FlowStats:
            queues = [tuple(r) for r in await conn.fetch(*self._args("queue_stats", params))]
            routed = tuple(await conn.fetchrow(*self._args("routed_stats", params)))
            limits = [tuple(r) for r in await conn.fetch(*self._args("limit_stats", params))]
            return FlowStats(queues, routed, limits)

        return await self._call(op, retry=True)

    async def routable(self, requires: Sequence[str], live_since: float) -> bool:
        """Whether a live worker's labels admit ``requires``."""
        row = await self._fetchrow("routable", {"requires": list(requires),
                                                "live_since": float(live_since)})
        return bool(row[0])

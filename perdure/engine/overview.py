"""What the dashboard's overview shows, as engine methods: unfinished runs by status, runs
started and finished over time, and the registered workers. Mixed into
:class:`~perdure.engine.engine.Engine`.

Exact counts of *finished* runs are left out on purpose: on PostgreSQL a count is a scan of
every row it counts, and a database keeps millions of finished runs. What a person watches is
what is in flight (exact, from the unfinished runs' index) and what finished recently (the
activity window, a range of the finished runs' index).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from perdure.engine.stranded import LIVE_LEASES, split_key
from perdure.errors import InvalidConfiguration
from perdure.flow.routing import labels_from
from perdure.records import Activity, RunStatus, WorkerInfo
from perdure.storage.port import Storage

if TYPE_CHECKING:
    from perdure.clock import Clock

__all__ = ["MAX_BUCKETS", "Overview"]

#: the most buckets ``activity`` returns (a chart of more has more bars than pixels)
MAX_BUCKETS = 1440


class Overview:
    """Counts, activity and workers (methods of ``Engine``)."""

    store: Storage
    clock: Clock
    lease: float

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - the engine's

    async def unfinished_counts(self) -> dict[RunStatus, int]:
        """How many runs are pending, running, waiting, blocked and paused now (every
        unfinished status, zero included)."""
        self._check_open()
        found = await self.store.unfinished_counts()
        return {s: found.get(s.value, 0) for s in RunStatus if not s.terminal}

    async def activity(self, *, window: timedelta = timedelta(hours=1),
                       bucket: timedelta = timedelta(minutes=1)) -> Activity:
        """Runs started, completed, failed and cancelled per ``bucket`` over the last
        ``window`` (at most 1,440 buckets). A finished run counts at its last update: when
        it finished."""
        self._check_open()
        for value, what in ((window, "window"), (bucket, "bucket")):
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise InvalidConfiguration(f"{what} must be a positive timedelta, not "
                                           f"{value!r}")
        size = bucket.total_seconds()
        count = math.ceil(window.total_seconds() / size)
        if count > MAX_BUCKETS:
            raise InvalidConfiguration(f"a window of {window} in buckets of {bucket} has "
                                       f"{count} buckets; at most {MAX_BUCKETS}")
        now = self.clock.time()
        # Buckets aligned on multiples of their size: a chart refreshed a few seconds later
        # shows the same bars, not bars that shift with every refresh.
        end = (math.floor(now / size) + 1) * size
        since = end - count * size
        series: dict[str, list[int]] = {k: [0] * count
                                        for k in ("started", "completed", "failed",
                                                  "cancelled")}
        for kind, index, n in await self.store.run_activity(since=since, until=end,
                                                               bucket=size):
            if kind in series and 0 <= index < count:
                series[kind][index] += n
        return Activity(datetime.fromtimestamp(since, UTC), size,
                        *(tuple(series[k]) for k in ("started", "completed", "failed",
                                                     "cancelled")))

    async def workers(self, *, limit: int = 100) -> list[WorkerInfo]:
        """The registered workers, latest heartbeat first: what each serves, how many runs
        it holds, and whether it is live (heartbeat within three leases)."""
        self._check_open()
        live_after = self.clock.time() - LIVE_LEASES * self.lease
        out = []
        for row in await self.store.list_workers(limit=limit):
            serves: dict[str, list[str]] = {}
            for key in row.serves:
                name, version = split_key(key)
                serves.setdefault(name, []).append(version)
            out.append(WorkerInfo(
                row.id, row.host, row.pid, datetime.fromtimestamp(row.started_at, UTC),
                datetime.fromtimestamp(row.heartbeat_at, UTC),
                {n: tuple(sorted(v)) for n, v in sorted(serves.items())}, row.runs_held,
                row.heartbeat_at >= live_after, labels_from(row.labels)))
        return out

"""The storage port: everything the engine asks of a database, and nothing more.

An adapter implements it with SQL only; the engine's logic never lives in an adapter. Writes
that must be ordered with later writes of the same run (journal entries) are *submitted*:
``put_entry`` enqueues at call time and returns a future, so the order in which a workflow makes
its durable calls is the order in which they commit, and concurrent runs share commits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from perdure.records import ClaimedRun, JournalEntry, ResumeRow, RunRow

__all__ = ["NewRun", "RunQuery", "Storage", "wf_key"]


def wf_key(workflow: str, version: str) -> str:
    """What a worker can run: a workflow name at a version (unit separator between)."""
    return f"{workflow}\x1f{version}"


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create."""

    id: str
    workflow: str
    version: str
    input: str
    now: float
    parent_id: str | None = None
    parent_seq: int | None = None
    deadline: float | None = None
    #: the run's tags (key, value), validated
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs to list or count, as the storage filters them (validated by the engine).

    Runs come newest first: by ``created_at`` descending, then by id descending. A page starts
    after the key ``(before_at, before_id)`` (a cursor), so a row is never listed twice nor
    skipped however many runs are created meanwhile; ``created_before`` is the same bound
    with an empty id.
    """

    statuses: tuple[str, ...] = ()  #: any of these (empty: any status)
    workflow: str | None = None
    version: str | None = None
    parent_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  #: every one of these (key, value) pairs
    after_at: float = -math.inf  #: created at or after
    before_at: float = math.inf  #: with before_id: rows whose (created_at, id) is smaller
    before_id: str = ""
    limit: int = 100


class Storage(Protocol):
    """What the engine needs from a backend. Every fenced write raises ``LeaseLost`` when the
    writer's (worker, epoch) no longer owns the run."""

    #: True when the backend pushes wake-ups from other processes (``set_waker``), so the
    #: worker's polling of ``changed()`` is only a slow safety net
    pushes: bool

    async def open(self) -> list[str]:
        """Connect and apply pending migrations; return those applied (``NNNN_name``).
        Raises ``StorageUnavailable`` when the database cannot be reached now (waiting may
        cure it) and ``InvalidConfiguration`` when it never will (bad path, credentials)."""

    async def close(self) -> None:
        """Flush pending writes and disconnect."""

    async def create_run(self, run: NewRun) -> bool:
        """Insert a pending run; False if a run with that id already exists."""

    async def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""

    async def list_runs(self, query: RunQuery) -> list[RunRow]:
        """Up to ``query.limit`` runs matching ``query``, newest first (see :class:`RunQuery`).
        A tag or parent filter is served by its index, in order."""

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match ``query``, its ``limit`` aside."""

    async def set_tags(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                       tags: Mapping[str, str]) -> None:
        """Journal ``entry`` and make ``tags`` the run's tags (replacing all), atomically
        (fenced)."""

    async def prune_runs(self, cutoffs: Mapping[str, float], *, limit: int) -> int:
        """Delete up to ``limit`` finished runs, in one transaction, with every row of theirs
        in other tables (journal, history, signals, tags, ...): runs in a status of
        ``cutoffs`` last updated before its cutoff, whose parent (if any) is finished or gone.
        Returns how many runs it deleted."""

    async def count_prunable(self, cutoffs: Mapping[str, float]) -> int:
        """How many runs :meth:`prune_runs` would delete, in all batches."""

    async def take_lease(self, name: str, owner: str, *, now: float, until: float) -> bool:
        """Take (or renew) the named lease until ``until`` if it is free, lapsed or already
        ``owner``'s; whether ``owner`` holds it now."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the named lease up, if ``owner`` holds it."""

    async def claim(self, *, worker: str, keys: Sequence[str], limit: int, now: float,
                    lease_until: float) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs whose workflow key is in ``keys``."""

    async def next_wake(self, keys: Sequence[str]) -> float | None:
        """The earliest time at which some run with one of ``keys`` becomes claimable."""

    async def load_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal in sequence order."""

    def put_entry(self, run_id: str, epoch: int, worker: str,
                  entry: JournalEntry) -> asyncio.Future[None]:
        """Insert or replace a journal entry (fenced); enqueued at call time."""

    async def finish_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                         output: str | None, error: str | None, now: float) -> None:
        """Record a terminal (or blocked) status and release the run (fenced); a parent parked
        waiting for this run is woken in the same transaction."""

    async def park_run(self, run_id: str, epoch: int, worker: str, *, status: str,
                       wake_at: float | None, now: float, error: str | None = None,
                       waiting_for: Sequence[str] = ()) -> None:
        """Release the run to ``status`` (waiting or pending) until ``wake_at`` or until one of
        ``waiting_for`` ("signal:NAME", "child:ID") happens (fenced). The wake condition is
        checked atomically with the park, so an event that committed meanwhile is not lost."""

    async def send_signal(self, run_id: str, name: str, payload: str, key: str | None,
                          now: float) -> str:
        """Buffer a signal and wake the run if it waits for it. Returns ``sent``,
        ``duplicate`` (same idempotency key), ``missing`` (no such run) or the terminal status
        of a finished run (nothing is written then)."""

    async def consume_signal(self, run_id: str, epoch: int, worker: str, *, seq: int,
                             name: str, now: float) -> str | None:
        """Take the oldest unconsumed signal ``name`` and journal its payload at ``seq`` in one
        transaction (fenced); None when there is none."""

    async def start_child(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                          child: NewRun) -> None:
        """Create the child run (if its id is new) and journal ``entry``, atomically (fenced)."""

    async def request_cancel(self, run_id: str, now: float) -> list[str]:
        """Flag the run and its unfinished descendants for cancellation and wake the parked
        ones. Returns the ids flagged (empty: the run is finished or missing)."""

    async def cancel_flags(self, worker: str) -> list[str]:
        """Runs this worker drives whose cancellation was requested (by another process)."""

    async def heartbeat(self, worker: str, *, runs: Sequence[str], lease_until: float,
                        now: float, host: str, pid: int, pid_start: str | None
                        ) -> dict[str, int]:
        """Renew, in one write, the leases of the ``runs`` the worker drives (and only those:
        a run it holds but no longer drives must lapse); returns those it still owns."""

    async def register_worker(self, worker: str, *, host: str, pid: int,
                              pid_start: str | None, now: float) -> None:
        """Announce a live worker (PostgreSQL: also take its session advisory lock, which the
        server releases the instant the worker's connection dies)."""

    async def unregister_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly."""

    async def dead_workers(self, me: str, host: str) -> list[str]:
        """Registered workers known to be dead right now: on this host, their pid is gone
        (or was recycled); on PostgreSQL, also any worker whose advisory lock is free."""

    def set_load(self, active_runs: Callable[[], int]) -> None:
        """Tell the adapter how many operations this process has in flight right now, so it
        can pick a cheaper path when there is nothing to batch (SQLite: commit without a
        thread hop)."""

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process may have made work runnable (PostgreSQL:
        on a NOTIFY). Backends without push never call it; the worker polls ``changed()``."""

    async def expire_worker(self, worker: str) -> int:
        """A dead worker: make its runs claimable now and forget it. Returns runs freed."""

    async def admin_transition(self, run_id: str, *, from_status: str, to_status: str,
                               supersede: Sequence[int], new_generation: bool,
                               now: float) -> bool:
        """Operator move (resume), atomically and only if the run is still ``from_status``:
        fence out any owner, record how the run ended as a resume, move the ``supersede``
        journal entries to the history (out of the journal, never deleted), bump the run's
        generation if ``new_generation``, and requeue it. False if the run had moved."""

    async def load_history(self, run_id: str) -> list[tuple[ResumeRow, list[JournalEntry]]]:
        """The run's resumes, oldest first, each with the journal entries it superseded."""

    async def changed(self) -> bool:
        """Whether another process committed since the last call (a cheap cross-process
        wake-up for backends without push)."""

    async def database_time(self) -> float:
        """The database's clock now, in unix seconds: the reference every worker corrects
        its own clock to (one cheap round trip; the engine measures around it)."""

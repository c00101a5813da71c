"""The queues and limits one engine knows, and how they reach the database.

An engine collects them from ``Engine(queues=..., limits=...)``, from its workflows' default
queues and, as steps run, from the ``Limit`` objects steps carry; it writes each definition to
the database before anything uses it (at open, or before a step's first take in this process),
so every worker enforces the one definition the database holds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import TypeVar

from perdure.errors import InvalidConfiguration
from perdure.flow.definitions import Limit, Queue, flow_name
from perdure.storage.port import LimitDef, QueueDef, Storage

__all__ = ["FlowRegistry", "limit_def", "queue_def"]

T = TypeVar("T")


def queue_def(q: Queue) -> QueueDef:
    """The database row of a queue."""
    return QueueDef(q.name, q.concurrency, q.per_worker, q.per_key_concurrency,
                    q.rate.count if q.rate else None, q.rate.per if q.rate else None,
                    json.dumps(dict(q.weights), sort_keys=True) if q.weights else None)


def limit_def(lim: Limit) -> LimitDef:
    """The database row of a limit."""
    return LimitDef(lim.name, lim.concurrency, lim.rate.count if lim.rate else None,
                    lim.rate.per if lim.rate else None)


class FlowRegistry:
    """Queues and limits by name; two different definitions under one name are refused."""

    def __init__(self, queues: Iterable[Queue] = (), limits: Iterable[Limit] = ()) -> None:
        self.queues: dict[str, Queue] = {}
        self.limits: dict[str, Limit] = {}
        for q in _items(queues, Queue, "queues"):
            self.add_queue(q, "queues")
        for lim in _items(limits, Limit, "limits"):
            self.add_limit(lim, "limits")
        self._defined: set[str] = set()  # limits written to the database by this process
        self._lock = asyncio.Lock()

    def add_queue(self, q: Queue, where: str) -> None:
        """Know ``q`` (``where``: which argument named it, for the error)."""
        known = self.queues.get(q.name)
        if known is not None and known != q:
            raise InvalidConfiguration(f"{where}: two different queues are named {q.name!r} "
                                       f"({known!r} and {q!r})")
        self.queues[q.name] = q

    def add_limit(self, lim: Limit, where: str) -> None:
        """Know ``lim``."""
        known = self.limits.get(lim.name)
        if known is not None and known != lim:
            raise InvalidConfiguration(f"{where}: two different limits are named "
                                       f"{lim.name!r} ({known!r} and {lim!r})")
        self.limits[lim.name] = lim

    def queue(self, value: Queue | str, what: str = "queue") -> Queue:
        """The queue ``value`` names (a ``Queue`` this engine knows, or its name)."""
        if isinstance(value, Queue):
            known = self.queues.get(value.name)
            if known is None or known != value:
                raise InvalidConfiguration(
                    f"{what}: queue {value.name!r} is not declared on this engine (pass it "
                    "in Engine(queues=[...]) or as a workflow's queue)")
            return known
        name = flow_name(value, what)
        found = self.queues.get(name)
        if found is None:
            known_names = ", ".join(sorted(self.queues)) or "none"
            raise InvalidConfiguration(f"{what}: unknown queue {name!r} (declared: "
                                       f"{known_names}); pass it in Engine(queues=[...])")
        return found

    def limit(self, value: Limit | str) -> Limit:
        """The limit ``value`` names; a ``Limit`` object not declared on the engine becomes
        known here (steps carry their limits)."""
        if isinstance(value, Limit):
            self.add_limit(value, "a step's limits")
            return value
        found = self.limits.get(value)
        if found is None:
            known_names = ", ".join(sorted(self.limits)) or "none"
            raise InvalidConfiguration(f"unknown limit {value!r} (declared: {known_names}); "
                                       "pass it in Engine(limits=[...])")
        return found

    async def define_all(self, store: Storage, now: float) -> None:
        """Write every queue and limit known now (an engine opening)."""
        if not self.queues and not self.limits:
            return
        async with self._lock:
            await store.define_flow([queue_def(q) for q in self.queues.values()],
                                    [limit_def(lim) for lim in self.limits.values()], now)
            self._defined |= set(self.limits)

    async def ensure(self, store: Storage, limits: Iterable[Limit], now: float) -> None:
        """Write the limits not yet written by this process (a step's first take)."""
        missing = [lim for lim in limits if lim.name not in self._defined]
        if not missing:
            return
        async with self._lock:
            missing = [lim for lim in missing if lim.name not in self._defined]
            if missing:
                await store.define_flow([], [limit_def(lim) for lim in missing], now)
                self._defined |= {lim.name for lim in missing}


def _items(values: object, kind: type[T], what: str) -> list[T]:
    if values is None:
        return []
    if isinstance(values, kind):
        values = [values]
    try:
        items = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidConfiguration(f"{what} must be a list of {kind.__name__}, not "
                                   f"{type(values).__name__}") from None
    out: list[T] = []
    for item in items:
        if not isinstance(item, kind):
            raise InvalidConfiguration(f"{what} must hold {kind.__name__} objects, not "
                                       f"{item!r}")
        out.append(item)
    return out

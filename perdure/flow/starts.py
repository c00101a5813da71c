"""The flow options of a start: queue, key, priority, delay, routing and debounce.

``plan`` checks them (each bad value raises ``InvalidConfiguration`` naming the argument, before
anything is written) and turns them, with the workflow's defaults, into the fields of the new
run's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration
from perdure.flow.definitions import Queue
from perdure.flow.registry import FlowRegistry
from perdure.flow.routing import requirements, selector

__all__ = ["StartPlan", "plan"]

_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class StartPlan:
    """What a start's flow options mean for the new run's row."""

    status: str = "pending"
    wake_at: float | None = None
    reason: str | None = None
    queue: str | None = None
    key: str | None = None
    priority: int = 0
    share: float = 1.0
    requires: list[str] | None = None
    #: coalesce with the run of the same workflow and key still gathering starts
    debounce: bool = False


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def plan(registry: FlowRegistry, *, default_queue: Queue | str | None,
         default_requires: dict[str, str] | None, queue: Queue | str | None, key: Any,
         priority: Any, delay: Any, requires: Any, debounce: Any, explicit_id: bool,
         now: float) -> StartPlan:
    """Check a start's flow options and plan the run's row."""
    chosen = queue if queue is not None else default_queue
    q = None if chosen is None else registry.queue(chosen, "queue")
    if key is not None:
        key = validate.name(key, "key", max_length=255)
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int) \
                or not -_INT32 - 1 <= priority <= _INT32:
            raise InvalidConfiguration(f"priority must be an int (32-bit), not {priority!r}")
        if q is None:
            raise InvalidConfiguration("priority orders runs within a queue, and this run has "
                                       "none: pass queue=... or give the workflow a queue")
    selected = default_requires if requires is None else selector(requires, "requires")
    status, wake_at, reason = "pending", None, None
    if delay is not None:
        seconds = validate.seconds(delay, "delay", zero=True, timedeltas=True)
        if seconds > 0:
            status, wake_at = "waiting", now + seconds
            reason = f"delay until {_when(wake_at)}"
    if debounce is not None:
        window = validate.seconds(debounce, "debounce", timedeltas=True)
        if key is None:
            raise InvalidConfiguration("debounce needs a key: starts of the same workflow and "
                                       "key coalesce (pass key=...)")
        if explicit_id:
            raise InvalidConfiguration("debounce cannot be combined with id: a debounced "
                                       "start goes to the run gathering starts of its key")
        status = "waiting"
        wake_at = max(wake_at or now, now + window)
        reason = f"debounce: starts when no other start came for {timedelta(seconds=window)}"
    return StartPlan(status, wake_at, reason, None if q is None else q.name, key,
                     priority or 0, 1.0 if q is None else q.share(key),
                     requirements(selected), debounce is not None)

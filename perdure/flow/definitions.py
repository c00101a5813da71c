"""What a user declares to control flow: ``Rate``, ``Queue`` and ``Limit``.

They are plain, immutable descriptions, checked when they are made (every bad value raises
``InvalidConfiguration`` naming the argument). An engine writes them to the database when it
opens, and the claims and the writes that take a limit read them there: the database holds the
one definition every worker enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration

__all__ = ["Limit", "Queue", "Rate", "flow_name"]


def flow_name(value: object, what: str) -> str:
    """A queue or limit name: plain text every backend stores (at most 200 characters)."""
    return validate.name(value, what, max_length=200)


def _positive(value: object, what: str) -> int:
    return validate.count(value, what)


class Rate:
    """At most ``count`` per ``per`` (a ``timedelta`` or seconds), over a sliding window: in no
    window of length ``per`` are more than ``count`` granted."""

    __slots__ = ("count", "per")

    count: int
    per: float  #: the window, in seconds

    def __init__(self, count: int, per: timedelta | float = timedelta(seconds=1)) -> None:
        object.__setattr__(self, "count", _positive(count, "Rate count"))
        object.__setattr__(self, "per", validate.seconds(per, "Rate per", timedeltas=True))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rate) and (self.count, self.per) == (other.count, other.per)

    def __hash__(self) -> int:
        return hash((self.count, self.per))

    def __repr__(self) -> str:
        return f"Rate({self.count}, per={self.per:g}s)"


def _rate(value: object, what: str) -> Rate | None:
    if value is None or isinstance(value, Rate):
        return value
    raise InvalidConfiguration(f"{what} must be a perdure.Rate, not {type(value).__name__}")


def _optional_count(value: object, what: str) -> int | None:
    return None if value is None else _positive(value, what)


class Queue:
    """A named line of runs with cluster-wide limits, enforced in the database.

    ``concurrency``: at most this many of its runs running at once, across every worker;
    ``per_worker``: at most this many on any one worker; ``rate``: at most so many *starts*
    per period (a ``Rate``), cluster-wide; ``per_key_concurrency``: at most this many running
    per partition key (``engine.start(..., key=...)``, a tenant say). Runs are taken lowest
    ``priority`` first, and within a priority round-robin across keys (``weights`` gives a key
    a larger share: a key of weight 2 is served twice as often), first-in first-out within a
    key. A run waiting for a slot is ``pending`` and holds nothing; a queued run that parks (a
    sleep, a signal) gives its slot back and queues again when it wakes.
    """

    __slots__ = ("concurrency", "name", "per_key_concurrency", "per_worker", "rate", "weights")

    name: str
    concurrency: int | None
    per_worker: int | None
    rate: Rate | None
    per_key_concurrency: int | None
    weights: Mapping[str, float]

    def __init__(self, name: str, *, concurrency: int | None = None,
                 per_worker: int | None = None, rate: Rate | None = None,
                 per_key_concurrency: int | None = None,
                 weights: Mapping[str, float] | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "name", flow_name(name, "a queue name"))
        set_(self, "concurrency", _optional_count(concurrency, "Queue concurrency"))
        set_(self, "per_worker", _optional_count(per_worker, "Queue per_worker"))
        set_(self, "rate", _rate(rate, "Queue rate"))
        set_(self, "per_key_concurrency",
             _optional_count(per_key_concurrency, "Queue per_key_concurrency"))
        set_(self, "weights", _weights(weights))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def spec(self) -> tuple[Any, ...]:
        """Everything that defines the queue (two queues of one name must agree on it)."""
        return (self.name, self.concurrency, self.per_worker, self.rate,
                self.per_key_concurrency, tuple(sorted(self.weights.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.spec())

    def share(self, key: str | None) -> float:
        """How far one run of ``key`` advances its key's place in the round-robin (1 / the
        key's weight): a heavier key's runs sit closer together in the line."""
        return 1.0 / self.weights.get(key or "", 1.0)

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        for attr in ("concurrency", "per_worker", "rate", "per_key_concurrency"):
            value = getattr(self, attr)
            if value is not None:
                parts.append(f"{attr}={value!r}")
        if self.weights:
            parts.append(f"weights={dict(self.weights)!r}")
        return f"Queue({', '.join(parts)})"


def _weights(weights: Mapping[str, float] | None) -> Mapping[str, float]:
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise InvalidConfiguration(f"Queue weights must be a mapping of key to weight, not "
                                   f"{type(weights).__name__}")
    out: dict[str, float] = {}
    for key, weight in weights.items():
        validate.name(key, "a Queue weights key")
        w = validate.number(weight, f"the Queue weight of key {key!r}")
        if w <= 0 or w > 1_000_000:
            raise InvalidConfiguration(f"the Queue weight of key {key!r} must be above 0 and "
                                       f"at most 1000000, not {weight!r}")
        out[key] = w
    return out


class Limit:
    """A named, global limit that steps take per attempt (``@step(limits=[...])``).

    ``concurrency``: a semaphore, at most this many attempts holding it at once across every
    worker (released when the attempt ends, or when a dead worker's run is recovered);
    ``rate``: at most so many attempts per period (a ``Rate``). A run whose step cannot get a
    token parks (status ``waiting``, reason ``limit NAME``) and holds no worker slot; it wakes
    when a token frees up: at the known time for a rate, pushed for a semaphore.
    """

    __slots__ = ("concurrency", "name", "rate")

    name: str
    concurrency: int | None
    rate: Rate | None

    def __init__(self, name: str, *, concurrency: int | None = None,
                 rate: Rate | None = None) -> None:
        object.__setattr__(self, "name", flow_name(name, "a limit name"))
        object.__setattr__(self, "concurrency",
                           _optional_count(concurrency, "Limit concurrency"))
        object.__setattr__(self, "rate", _rate(rate, "Limit rate"))
        if self.concurrency is None and self.rate is None:
            raise InvalidConfiguration(f"Limit {name!r} needs a concurrency or a rate (or both)")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def spec(self) -> tuple[Any, ...]:
        """Everything that defines the limit (two limits of one name must agree on it)."""
        return (self.name, self.concurrency, self.rate)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limit) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.spec())

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        if self.concurrency is not None:
            parts.append(f"concurrency={self.concurrency}")
        if self.rate is not None:
            parts.append(f"rate={self.rate!r}")
        return f"Limit({', '.join(parts)})"

"""``@workflow`` and ``@step``: plain functions made durable.

Decorating registers nothing globally: a workflow becomes known to an engine only when it is
passed in ``Engine(..., workflows=[...])``, so two engines can live in one process.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from perdure import validate
from perdure.codec.functions import FunctionCodec
from perdure.errors import InvalidConfiguration
from perdure.flow.definitions import Limit, Queue, flow_name
from perdure.flow.routing import selector
from perdure.retry import RetryPolicy
from perdure.workflow.scope import active_step, run_or_raise
from perdure.workflow.stops import Stop

__all__ = ["Escaped", "PASS_THROUGH", "Step", "Workflow", "contained", "step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: what user code may raise that is *not* a failure of that code: cancellation, the operator's
#: Ctrl-C, a coroutine being closed, and the engine's own stops
PASS_THROUGH = (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit, Stop)


class Escaped(Exception):
    """Internal: user code raised a ``BaseException`` that is not cancellation (``SystemExit``,
    say), carried as an ordinary exception so that it fails the attempt. Uncontained, asyncio
    re-raises ``SystemExit`` out of the event loop and the whole worker process exits."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause


async def contained(aw: Awaitable[T]) -> T:
    """Await ``aw`` (user code), turning a non-cancellation ``BaseException`` into
    :class:`Escaped`. It must wrap the user's coroutine directly, inside any task that
    ``asyncio.wait_for`` creates around it: a task re-raises ``SystemExit`` into the loop."""
    try:
        return await aw
    except PASS_THROUGH:
        raise
    except Exception:
        raise
    except BaseException as exc:
        raise Escaped(exc) from exc


class Workflow(Generic[P, R]):
    """A workflow definition: a named, versioned ``async def`` whose durable calls are journaled.

    Calling it directly runs the function inline (inside another workflow that makes it part
    of the caller's own journal); ``engine.start(wf, ...)`` runs it durably as its own run.
    """

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, R]], *, name: str | None,
                 version: str, default: bool = False, queue: Queue | str | None = None,
                 requires: dict[str, str] | None = None) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidConfiguration(f"@workflow needs an 'async def'; {fn!r} is not one")
        self.fn = fn
        self.name: str = validate.name(fn.__qualname__ if name is None else name,
                                       "workflow name")
        self.version = validate.name(version, "workflow version")
        if not isinstance(default, bool):
            raise InvalidConfiguration(f"workflow default must be True or False, not "
                                       f"{default!r}")
        #: new starts by name use this version when several versions are served
        self.default = default
        #: the queue its runs go to unless a start names another (a name: declared on the
        #: engine), and the labels a worker needs to take them
        self.queue: Queue | str | None = (queue if queue is None or isinstance(queue, Queue)
                                          else flow_name(queue, "@workflow queue"))
        self.requires = selector(requires, "@workflow requires")
        self.codec = FunctionCodec(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<workflow {self.name!r} version {self.version!r}>"


class Step(Generic[P, R]):
    """A step definition: one unit of side-effecting work, retried and journaled.

    Calling a step inside a workflow takes the next sequence number at once (so concurrent
    calls are numbered in call order) and returns an awaitable of its journaled outcome.
    Called inside another step, it simply runs (nested steps are part of the outer step).
    """

    def __init__(self, fn: Callable[P, Awaitable[R]] | Callable[P, R], *, name: str | None,
                 retry: RetryPolicy, timeout: float | None,
                 compensate: Callable[..., Any] | None,
                 limits: Sequence[Limit | str] = ()) -> None:
        if compensate is not None and not callable(compensate):
            raise InvalidConfiguration(f"compensate must be callable, not {compensate!r}")
        #: the limits each attempt takes a token of (a name: declared on the engine)
        self.limits: tuple[Limit | str, ...] = _limits(limits)
        self.fn = fn
        self.name: str = validate.name(fn.__qualname__ if name is None else name, "step name")
        self.retry = retry
        self.timeout = None if timeout is None else validate.seconds(timeout, "step timeout")
        self.compensate = compensate
        self.is_async = inspect.iscoroutinefunction(fn)
        self.codec = FunctionCodec(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        if active_step.get() is not None:  # inside another step: part of that attempt
            return self.invoke(args, kwargs)
        run = run_or_raise(f"step {self.name!r}")
        coro: Coroutine[Any, Any, R] = run.call_step(self, args, kwargs)
        return coro

    async def invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """One attempt of the function itself (a sync function runs in a worker thread)."""
        if self.is_async:
            coro: Awaitable[R] = self.fn(*args, **kwargs)  # type: ignore[assignment]
        else:
            coro = asyncio.to_thread(self.fn, *args, **kwargs)  # type: ignore[arg-type]
        if self.timeout is None:
            return await contained(coro)
        # A timed-out async attempt is cancelled; a sync one cannot be stopped (its thread
        # runs on), but the attempt is counted as failed all the same.
        return await asyncio.wait_for(contained(coro), self.timeout)

    def __repr__(self) -> str:
        return f"<step {self.name!r}>"


@overload
def workflow(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...
@overload
def workflow(*, name: str | None = None, version: str = "1", default: bool = False,
             queue: Queue | str | None = None, requires: dict[str, str] | None = None
             ) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...


def workflow(fn: Callable[P, Coroutine[Any, Any, R]] | None = None, /, *,
             name: str | None = None, version: str = "1", default: bool = False,
             queue: Queue | str | None = None, requires: dict[str, str] | None = None) -> Any:
    """Make an ``async def`` a durable workflow.

    ``name`` defaults to the function's qualified name; ``version`` pins each run to the code
    that started it: a worker only drives runs of the versions it has. An engine may serve
    several versions of one name; a start by name uses the one marked ``default=True``, else
    the highest version. ``queue`` is the
    queue its runs go to (a ``Queue``, or the name of one declared on the engine) and
    ``requires`` the labels a worker needs to take them (``{"gpu": "*", "region": "eu"}``);
    a start may override both.
    """
    def wrap(f: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        return Workflow(f, name=name, version=version, default=default, queue=queue,
                        requires=requires)

    return wrap(fn) if fn is not None else wrap


@overload
def step(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Step[P, R]: ...
@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(*, name: str | None = None, max_attempts: int | None = None,
         timeout: float | None = None, compensate: Callable[..., Any] | None = None,
         retry: RetryPolicy | None = None,
         limits: Sequence[Limit | str] = ()) -> _StepDecorator: ...


def step(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         max_attempts: int | None = None, timeout: float | None = None,
         compensate: Callable[..., Any] | None = None,
         retry: RetryPolicy | None = None, limits: Sequence[Limit | str] = ()) -> Any:
    """Make a function a durable step: retried with back-off, its outcome journaled.

    ``max_attempts`` overrides ``retry.max_attempts``; ``timeout`` bounds each attempt;
    ``compensate`` is called (with the step's arguments, plus ``result=`` if it accepts it)
    in reverse order when the run fails or is cancelled after this step completed.
    ``limits`` (``Limit`` objects, or names declared on the engine): each attempt takes a
    token of every one first; without one the run parks until a token frees up.
    """
    policy = retry or RetryPolicy()
    if max_attempts is not None:
        policy = RetryPolicy(max_attempts, policy.initial_delay, policy.multiplier,
                             policy.max_delay, policy.jitter)

    def wrap(f: Callable[..., Any]) -> Step[Any, Any]:
        return Step(f, name=name, retry=policy, timeout=timeout, compensate=compensate,
                    limits=limits)

    return wrap(fn) if fn is not None else _StepDecorator(wrap)


class _StepDecorator:
    """What ``@step(...)`` returns: keeps async and sync functions' types apart for checkers."""

    def __init__(self, wrap: Callable[[Callable[..., Any]], Step[Any, Any]]) -> None:
        self._wrap = wrap

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Step[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Step[P, R]: ...
    def __call__(self, fn: Callable[..., Any], /) -> Step[Any, Any]:
        return self._wrap(fn)


def _limits(limits: object) -> tuple[Limit | str, ...]:
    """``@step(limits=...)`` checked: a list of ``Limit`` objects or limit names."""
    if isinstance(limits, Limit | str):
        limits = [limits]
    if not isinstance(limits, list | tuple):
        raise InvalidConfiguration(f"@step limits must be a list of Limit objects or names, "
                                   f"not {type(limits).__name__}")
    out: dict[str, Limit | str] = {}
    for item in limits:
        if isinstance(item, Limit):
            name = item.name
        elif isinstance(item, str):
            name = flow_name(item, "a @step limit name")
        else:
            raise InvalidConfiguration(f"@step limits must hold Limit objects or names, not "
                                       f"{item!r}")
        known = out.get(name)
        if isinstance(known, Limit) and isinstance(item, Limit) and known != item:
            raise InvalidConfiguration(f"@step limits: two different limits are named {name!r}")
        out[name] = known if isinstance(known, Limit) else item
    return tuple(out.values())

"""``perdure worker``: load an application's workflows and drive their runs until SIGTERM.

Start-up: the engine waits for a database it cannot reach yet (with a logged back-off), and a
SIGTERM while it waits stops it cleanly. Shutdown: after the grace period the in-flight runs
are handed back and the process exits, even if a sync step's thread is still running (a thread
cannot be stopped; its side effect may still happen after the hand-back, which the
at-least-once contract of steps allows).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from perdure.cli.options import CommandError, database_url
from perdure.engine.engine import Engine
from perdure.observe.health import LoopWatch
from perdure.observe.http import Endpoints, EndpointServer
from perdure.workflow.definitions import Workflow

__all__ = ["load_target", "run", "worker_engine"]

log = logging.getLogger("perdure")
P = ParamSpec("P")
T = TypeVar("T")


def load_target(spec: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted); ``CommandError`` names what
    is wrong, in one line."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandError(f"expected MODULE:ATTR (e.g. myapp.flows:engine), not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the current project is importable
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name) \
                and module_name[len(exc.name):][:1] in ("", "."):
            raise CommandError(f"cannot import {module_name!r}: no module named {exc.name!r} "
                               f"(from {os.getcwd()})") from None
        raise CommandError(_import_failure(module_name, exc)) from None
    except Exception as exc:
        raise CommandError(_import_failure(module_name, exc)) from None
    for i, part in enumerate(attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = ".".join([module_name, *attr.split(".")[:i]])
            raise CommandError(f"{where!r} has no attribute {part!r}") from None
    return obj


def _import_failure(module_name: str, exc: BaseException) -> str:
    """One line: what importing the application's module raised, and where."""
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"importing {module_name!r} raised {type(exc).__name__}: {exc}{at}"


def _workflows_of(target: Any, spec: str) -> list[Workflow[Any, Any]]:
    if isinstance(target, Workflow):
        return [target]
    if isinstance(target, str | bytes | dict) or not hasattr(target, "__iter__"):
        raise CommandError(f"{spec} is {_describe(target)}, not an Engine, a workflow or a "
                           "list of workflows")
    items = list(target)
    strangers = [item for item in items if not isinstance(item, Workflow)]
    if strangers:
        raise CommandError(f"{spec} holds {_describe(strangers[0])}, which is not a workflow "
                           "(decorate it with @workflow)")
    return items


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def worker_engine(target: Any, args: argparse.Namespace, *, worker: bool = True) -> Engine:
    """The engine a command drives runs with: ``target``'s (on ``--db`` if given), or a new
    one for the workflows ``target`` names; ``worker=False`` for one that drives on demand
    (``perdure run-once``) rather than in the background."""
    url = database_url(args)
    overrides: dict[str, Any] = {}
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    # (run-once and tick share this function; they take no metrics or tracing options)
    if getattr(args, "metrics_port", None) is not None and not (
            isinstance(target, Engine) and target.metrics is not None):
        overrides["metrics"] = True  # an engine that keeps metrics already keeps its registry
    if getattr(args, "tracing", False) and not (
            isinstance(target, Engine) and target.observer.tracing is not None):
        overrides["tracing"] = True  # an engine that traces already has its provider
    if not worker:
        overrides["worker"] = False
    if isinstance(target, Engine):
        if not target.is_worker and worker:
            raise CommandError(f"{args.target} is a client engine (worker=False): it drives "
                               "no runs")
        engine = target.with_url(url) if (args.db or os.environ.get("PERDURE_DATABASE_URL")) \
            else target
        if overrides:
            engine = Engine(engine.url, **{**engine._options, **overrides})
    else:
        engine = Engine(url, workflows=_workflows_of(target, args.target),
                        table_prefix=args.prefix, **overrides)
    if not engine.workflows:
        raise CommandError(f"{args.target} names no workflows: a worker would serve nothing")
    return engine


class _CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting the calls still running in it (sync steps and
    compensations run there), so the process knows whether exiting abandons one."""

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="perdure-thread")
        self._lock = threading.Lock()
        self.running = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        def counted() -> T:
            with self._lock:
                self.running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return super().submit(counted)


def _serve(engine: Engine, args: argparse.Namespace, watch: LoopWatch) -> list[EndpointServer]:
    """The HTTP endpoints asked for: metrics (with health) on ``--metrics-port``, health on
    ``--health-port`` (one server when both are the same port)."""
    wanted: list[tuple[int, bool]] = []  # (port, with /metrics)
    if args.metrics_port is not None:
        wanted.append((args.metrics_port, True))
    if args.health_port is not None and (args.health_port != args.metrics_port
                                         or args.health_port == 0):
        wanted.append((args.health_port, False))
    servers: list[EndpointServer] = []
    try:
        for number, metrics in wanted:
            app = Endpoints(readiness=engine.readiness, loop=watch, metrics_app=(
                engine.metrics.wsgi_app() if metrics and engine.metrics is not None else None))
            try:
                servers.append(EndpointServer(app, host=args.http_host, port=number))
            except OSError as exc:
                raise CommandError(f"cannot serve HTTP on {args.http_host}:{number}: "
                                   f"{exc.strerror or exc}") from None
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


async def _run_worker(engine: Engine, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threads = _CountingExecutor()
    loop.set_default_executor(threads)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Up before the database is: a liveness probe must not restart a worker that waits for it.
    watch = LoopWatch(loop)
    watch.start()
    servers = _serve(engine, args, watch)
    try:
        await _work(engine, args.grace, stop, threads, servers)
    finally:
        for server in servers:
            server.close()
        watch.stop()


async def _work(engine: Engine, grace: float | None, stop: asyncio.Event,
                threads: _CountingExecutor, servers: list[EndpointServer]) -> None:
    opening = asyncio.create_task(engine.open())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((opening, stopping), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not opening.done():  # stopped while waiting for the database
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await opening
        print("stopped before the database could be reached", flush=True)
        return
    opening.result()
    print(f"perdure worker {engine.worker_id} driving {engine.workflows.describe()} "
          f"on {engine!r}", flush=True)
    for server in servers:
        print(f"serving {' '.join(server.app.paths())} on {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        print("draining: no new claims; finishing or handing back in-flight runs", flush=True)
        await engine.close(grace)
    if threads.running:
        # The runs are handed back; only threads that cannot be stopped remain. Waiting for
        # them (as the interpreter would, joining its executor) would hold the process past
        # its grace period for as long as a step likes.
        print(f"grace period over: exiting with {threads.running} step thread(s) still "
              "running; their runs were handed back", flush=True)
        for server in servers:
            server.close()
        _exit_now(0)


def _exit_now(code: int) -> None:
    """Exit without joining the executor's threads (atexit callbacks still run)."""
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(args: argparse.Namespace) -> int:
    """The ``worker`` command."""
    engine = worker_engine(load_target(args.target), args)
    asyncio.run(_run_worker(engine, args))
    return 0

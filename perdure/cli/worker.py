"""``perdure worker``: load an application's workflows and drive their runs until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from typing import Any

from perdure.cli.options import database_url
from perdure.engine.engine import Engine
from perdure.errors import PerdureError
from perdure.workflow.definitions import Workflow

__all__ = ["load_target", "run"]


def load_target(spec: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PerdureError(f"expected MODULE:ATTR (e.g. myapp.flows:engine), not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the current project is importable
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _worker_engine(target: Any, args: argparse.Namespace) -> Engine:
    url = database_url(args)
    overrides: dict[str, Any] = {}
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    if isinstance(target, Engine):
        engine = target.with_url(url) if (args.db or os.environ.get("PERDURE_DATABASE_URL")) \
            else target
        if overrides:
            engine = Engine(engine.url, **{**engine._options, **overrides})
        return engine
    workflows = [target] if isinstance(target, Workflow) else list(target)
    return Engine(url, workflows=workflows, table_prefix=args.prefix, **overrides)


async def _run_worker(engine: Engine, grace: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await engine.open()
    print(f"perdure worker {engine.worker_id} driving {engine.workflows.describe()} "
          f"on {engine!r}", flush=True)
    try:
        await stop.wait()
    finally:
        print("draining: no new claims; finishing or handing back in-flight runs", flush=True)
        await engine.close(grace)


def run(args: argparse.Namespace) -> int:
    """The ``worker`` command."""
    engine = _worker_engine(load_target(args.target), args)
    asyncio.run(_run_worker(engine, args.grace))
    return 0

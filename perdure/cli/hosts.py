"""``perdure run-once`` and ``perdure tick``: one invocation of a serverless or cron host.

Each loads an application's workflows like ``perdure worker`` (``MODULE:ATTR``), opens an engine
without a background worker, does its one piece of work, prints what it did as one JSON line
(for the platform's logs) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from perdure.cli.options import positive_int, seconds
from perdure.cli.worker import load_target, worker_engine
from perdure.engine.engine import Engine

__all__ = ["COMMANDS", "add_parsers", "run"]

#: the commands this module serves
COMMANDS = ("run-once", "tick")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``run-once`` and ``tick`` to the subcommands ``sub``."""
    once = sub.add_parser(
        "run-once", parents=[common], help="drive the runnable runs once, then exit",
        description="Claim and drive runnable runs until none is left or the budget is spent, "
                    "hand back what is unfinished (the next invocation takes it at once), "
                    "print a JSON summary and exit. For AWS Lambda, Cloud Run jobs or a "
                    "Kubernetes CronJob.")
    once.add_argument("target", metavar="MODULE:ATTR",
                      help="an Engine, a workflow or a list of workflows")
    once.add_argument("--max-seconds", type=seconds, required=True, metavar="SECONDS",
                      help="the time budget (keep it below the platform's timeout)")
    once.add_argument("--max-runs", type=positive_int, metavar="N",
                      help="claim at most N runs (default: no limit)")
    once.add_argument("--concurrency", type=positive_int, metavar="N",
                      help="runs driven at once (default: the engine's, 100)")
    tick = sub.add_parser(
        "tick", parents=[common], help="do a worker's background maintenance once",
        description="Free the runs of dead workers and count the parked runs now due; print a "
                    "JSON summary and exit.")
    tick.add_argument("target", metavar="MODULE:ATTR",
                      help="an Engine, a workflow or a list of workflows")


def run(args: argparse.Namespace) -> int:
    """The ``run-once`` and ``tick`` commands."""
    if args.command == "tick":
        args.concurrency = None
    engine = worker_engine(load_target(args.target), args, worker=False)
    summary = asyncio.run(_invoke(engine, args))
    print(json.dumps(dataclasses.asdict(summary)), flush=True)
    return 0


async def _invoke(engine: Engine, args: argparse.Namespace) -> Any:
    async with engine:
        if args.command == "tick":
            return await engine.tick()
        return await engine.run_once(max_seconds=args.max_seconds, max_runs=args.max_runs)

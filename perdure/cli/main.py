"""The ``perdure`` command: its parser, and the dispatch to one module per command group."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from perdure.cli import lifecycle, runs, worker
from perdure.cli.options import DEFAULT_DB
from perdure.errors import PerdureError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perdure", description="Durable workflows for Python.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"database URL (default: $PERDURE_DATABASE_URL or "
                                     f"{DEFAULT_DB})")
    common.add_argument("--prefix", default="perdure_", help="table prefix (default perdure_)")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", parents=[common], help="run a worker for an app's workflows")
    w.add_argument("target", help="MODULE:ATTR naming an Engine, a workflow or a list of them")
    w.add_argument("--concurrency", type=int, help="runs driven at once")
    w.add_argument("--grace", type=float, help="seconds to let runs finish on SIGTERM")
    runs = sub.add_parser("runs", help="list and inspect runs").add_subparsers(
        dest="runs_command", required=True)
    ls = runs.add_parser("list", parents=[common], help="list runs, newest first")
    ls.add_argument("--status")
    ls.add_argument("--workflow")
    ls.add_argument("--limit", type=int, default=50)
    show = runs.add_parser("show", parents=[common], help="a run's status and journal")
    show.add_argument("id")
    res = sub.add_parser("resume", parents=[common], help="re-drive a blocked or failed run")
    res.add_argument("id")
    sub.add_parser("migrate", parents=[common], help="create or upgrade the schema")
    lifecycle.add_commands(sub, runs, ls, common)
    sig = sub.add_parser("signal", parents=[common], help="send a signal to a run")
    sig.add_argument("id")
    sig.add_argument("name")
    sig.add_argument("payload", help="JSON payload")
    sig.add_argument("--key", help="idempotency key: a resend with the same key is a no-op")
    can = sub.add_parser("cancel", parents=[common], help="cancel a run")
    can.add_argument("id")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perdure`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("PERDURE_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "worker":
            return worker.run(args)
        return asyncio.run(runs.run(args))
    except PerdureError as exc:
        print(f"perdure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"perdure: the payload is not valid JSON: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

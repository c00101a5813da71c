"""``perdure runs prune``: delete old finished runs now (what ``Engine(retention=)`` does in
the background)."""

from __future__ import annotations

import argparse
from typing import Any

from perdure import validate
from perdure.cli.options import positive_int
from perdure.engine.engine import Engine
from perdure.errors import InvalidConfiguration

__all__ = ["add_prune_parser", "prune"]

FINISHED = ("completed", "failed", "cancelled")


def _age(text: str) -> str:
    try:
        validate.age(text, "--older-than")
    except InvalidConfiguration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def add_prune_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``runs prune``."""
    p = sub.add_parser(
        "prune", parents=[common], help="delete old finished runs",
        description="Delete finished runs last updated longer ago than --older-than, with "
                    "their journals, history, signals and tags, in batches. Never a run that "
                    "is not finished, nor a finished child whose parent is not.")
    p.add_argument("--older-than", type=_age, required=True, metavar="AGE",
                   help="how old a finished run must be: 30d, 12h, 90m, 45s, 2w or a sum "
                        "such as 1d12h")
    p.add_argument("--status", action="append", choices=FINISHED,
                   help="only runs in this status (repeat for several; default: all three)")
    p.add_argument("--dry-run", action="store_true",
                   help="count the runs it would delete, delete nothing")
    p.add_argument("--batch", type=positive_int, default=500, metavar="N",
                   help="runs per transaction (default: %(default)s)")


async def prune(engine: Engine, args: argparse.Namespace) -> int:
    """Prune (or count) and say how many."""
    statuses = sorted(set(args.status or FINISHED))
    what = "finished" if len(statuses) == len(FINISHED) else "/".join(statuses)
    age = args.older_than
    n = await engine.prune(age, status=statuses, dry_run=args.dry_run, batch=args.batch)
    if args.dry_run:
        print(f"{n} {what} run(s) older than {age} would be pruned (dry run: nothing deleted)")
    else:
        print(f"pruned {n} {what} run(s) older than {age}")
    return 0

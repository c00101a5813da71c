"""``perdure outbox list|dlq|replay|purge|stats``: the transactional outbox, for an operator."""

from __future__ import annotations

import argparse
from typing import Any

from perdure.cli.options import database_url
from perdure.cli.output import _fmt_time, _short, table
from perdure.engine.engine import Engine
from perdure.errors import PerdureError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``outbox`` command group to the ``perdure`` parser."""
    group = sub.add_parser("outbox", help="events emitted by workflows: backlog and dead "
                                          "letters").add_subparsers(dest="outbox_command",
                                                                    required=True)
    ls = group.add_parser("list", parents=[common], help="events not delivered yet, in emit "
                                                         "order")
    ls.add_argument("--key", help="only the events of this key")
    ls.add_argument("--limit", type=int, default=50)
    dlq = group.add_parser("dlq", parents=[common], help="dead letters: events that failed "
                                                         "every delivery attempt")
    dlq.add_argument("--limit", type=int, default=50)
    replay = group.add_parser("replay", parents=[common],
                              help="move dead letters back into the outbox, due now")
    replay.add_argument("ids", nargs="*", help="event ids (see `perdure outbox dlq`)")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    purge = group.add_parser("purge", parents=[common], help="delete dead letters for good")
    purge.add_argument("ids", nargs="*", help="event ids (see `perdure outbox dlq`)")
    purge.add_argument("--all", action="store_true", help="every dead letter")
    purge.add_argument("--older-than", type=float, metavar="SECONDS",
                       help="only those that failed more than SECONDS ago")
    group.add_parser("stats", parents=[common], help="backlog and failure counts")


def _chosen(args: argparse.Namespace, verb: str) -> list[str] | None:
    """The ids the command names, or None for all; an operator must say which."""
    if args.ids and args.all:
        raise PerdureError(f"name event ids to {verb}, or pass --all, not both")
    if args.all or (verb == "purge" and args.older_than is not None and not args.ids):
        return None
    if not args.ids:
        raise PerdureError(f"name the event ids to {verb} (see `perdure outbox dlq`), or pass "
                           "--all")
    return list(args.ids)


async def run(args: argparse.Namespace) -> int:
    """The ``outbox`` commands."""
    async with Engine(database_url(args), worker=False, table_prefix=args.prefix) as engine:
        outbox, command = engine.outbox, args.outbox_command
        if command == "list":
            events = await outbox.pending(limit=args.limit, key=args.key)
            print(table([(e.id, e.name, e.key or "-", _fmt_time(e.created_at),
                           str(e.attempt - 1), _fmt_time(e.next_attempt_at),
                           _short(e.last_error, 40)) for e in events],
                         ("ID", "NAME", "KEY", "EMITTED", "ATTEMPTS", "NEXT ATTEMPT",
                          "LAST ERROR")))
        elif command == "dlq":
            dead = await outbox.dead_letters(limit=args.limit)
            print(table([(d.event.id, d.event.name, d.event.key or "-",
                           _fmt_time(d.event.created_at), str(d.attempts),
                           _fmt_time(d.failed_at), _short(d.error, 40)) for d in dead],
                         ("ID", "NAME", "KEY", "EMITTED", "ATTEMPTS", "FAILED", "ERROR")))
        elif command == "replay":
            moved = await outbox.replay(_chosen(args, "replay"))
            print(f"{moved} dead letter(s) moved back into the outbox")
        elif command == "purge":
            gone = await outbox.purge(_chosen(args, "purge"), older_than=args.older_than)
            print(f"{gone} dead letter(s) deleted")
        else:
            stats = await outbox.stats()
            print(f"pending   {stats.pending} ({stats.retrying} retrying)")
            print(f"oldest    {_fmt_time(stats.oldest_pending_at)}")
            print(f"dead      {stats.dead}")
            print(f"publisher {stats.leader or '-'}")
    return 0

"""``perdure runs list`` and ``perdure runs show``: find runs and look inside one, for a person
(tables) or a script (``--json``, ``--output jsonl``)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from perdure.cli.filters import add_filter_options, filters_from
from perdure.cli.options import positive_int
from perdure.cli.output import entry_json, print_run, print_runs, run_json, time_text
from perdure.engine.engine import Engine
from perdure.errors import InvalidCursor

__all__ = ["add_list_parser", "add_show_parser", "list_runs", "show_run"]

#: children ``runs show`` names (the rest: ``runs list --parent ID``)
CHILDREN_SHOWN = 20


def _add_output(parser: argparse.ArgumentParser, *, lines: bool) -> None:
    choices = ["table", "json", "jsonl"] if lines else ["text", "json"]
    parser.add_argument("--output", "-o", choices=choices, default=choices[0],
                        help="how to print: %(choices)s (default: %(default)s)")
    parser.add_argument("--json", dest="output", action="store_const", const="json",
                        help="the same as --output json")


def add_list_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``runs list``."""
    ls: argparse.ArgumentParser = sub.add_parser(
        "list", parents=[common], help="find runs, newest first",
        description="List runs, newest first, that match every filter given. One page at a "
                    "time: when more runs match, the command says so and how to see them "
                    "(--cursor).",
        epilog="JSON: --json prints {\"runs\": [...], \"next_cursor\": ...}; --output jsonl "
               "prints one run per line and the next cursor, if any, on stderr.")
    add_filter_options(ls)
    ls.add_argument("--limit", type=positive_int, default=50, metavar="N",
                    help="at most N runs per page (default: %(default)s)")
    ls.add_argument("--cursor", metavar="CURSOR",
                    help="continue after the previous page (its next cursor; same filters)")
    _add_output(ls, lines=True)
    return ls


def add_show_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``runs show``."""
    show = sub.add_parser("show", parents=[common],
                          help="a run's status, tags, family, error and journal",
                          description="A run's status, tags, parent and children, arguments, "
                                      "result or error with its traceback, due times, resume "
                                      "history and journal.")
    show.add_argument("id", help="the run id")
    show.add_argument("--full", action="store_true",
                      help="print arguments, results and errors in full (default: shortened)")
    _add_output(show, lines=False)


async def list_runs(engine: Engine, args: argparse.Namespace) -> int:
    """One page of runs, and how to get the next one."""
    filters = filters_from(args)
    try:
        page = await engine.list_runs(limit=args.limit, cursor=args.cursor, **filters)
    except InvalidCursor as exc:
        raise InvalidCursor(f"{exc} (the filters must be those of the command that printed "
                            "the cursor)") from None
    if args.output == "json":
        print(json.dumps({"runs": [run_json(r) for r in page], "next_cursor": page.next_cursor},
                         indent=2, ensure_ascii=False))
        return 0
    if args.output == "jsonl":
        for info in page:
            print(json.dumps(run_json(info), ensure_ascii=False))
        if page.next_cursor is not None:
            print(f"more runs match: add --cursor {page.next_cursor}", file=sys.stderr)
        return 0
    if not page and args.cursor is None:
        print("no runs match" if filters else "no runs yet")
        return 0
    print_runs(page)
    if page.next_cursor is not None:
        again = _again(args.argv, page.next_cursor)
        print(f"\n{len(page)} runs shown; more match. Next page:\n  {again}")
    return 0


def _again(argv: list[str], cursor: str) -> str:
    """This command line again, with ``--cursor`` set to the next page's."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--cursor":
            skip = True
        elif not arg.startswith("--cursor="):
            out.append(arg)
    return shlex.join(["perdure", *out, "--cursor", cursor])


async def show_run(engine: Engine, args: argparse.Namespace) -> int:
    """One run, inside out."""
    info = await engine.status(args.id)
    journal = await engine.journal(args.id)
    history = await engine.history(args.id)
    kids = await engine.list_runs(parent=args.id, limit=CHILDREN_SHOWN)
    children = [k.id for k in reversed(kids)]  # oldest first, as they were started
    if args.output == "json":
        doc = run_json(info)
        doc["children"] = children
        doc["more_children"] = kids.next_cursor is not None
        doc["journal"] = [entry_json(e) for e in journal]
        doc["history"] = [{
            "generation": r.generation, "status": r.status.value,
            "error": None if r.error is None else {"type": r.error.type,
                                                   "message": r.error.message,
                                                   "traceback": r.error.traceback},
            "blocked_reason": r.blocked_reason,
            "failed_compensations": list(r.failed_compensations),
            "ended_at": time_text(r.ended_at), "resumed_at": time_text(r.resumed_at),
            "superseded": [entry_json(e) for e in r.superseded]} for r in history]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print_run(info, journal, history, full=args.full, children=children,
              more_children=kids.next_cursor is not None)
    return 0

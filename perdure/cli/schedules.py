"""``perdure schedules list|pause|resume|trigger|backfill|delete``: schedules, for an operator.

Schedules are created by the application (``engine.schedules.create``), where the workflow
and its arguments live; the command inspects and steers them. It opens a client engine
(``worker=False``), so it fails fast with ``StorageUnavailable`` when the database cannot be
reached.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from perdure.cli.options import database_url
from perdure.cli.output import _fmt_time, table
from perdure.engine.engine import Engine
from perdure.errors import ScheduleNotFound
from perdure.flow.schedules import ScheduleInfo

__all__ = ["add_parser", "print_schedules", "run"]


def moment(text: str) -> datetime:
    """An argparse type: an ISO 8601 date and time; without an offset, UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2030-01-01T00:00Z, not {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``schedules`` command group, on the top-level subparsers ``sub``."""
    group = sub.add_parser("schedules", help="list and steer schedules",
                           description="List schedules, pause and resume them, start a run "
                                       "now, backfill a range of slots, delete them.")
    cmds = group.add_subparsers(dest="schedules_command", required=True,
                                metavar="{list,pause,resume,trigger,backfill,delete}")
    cmds.add_parser("list", parents=[common], help="every schedule, its state and counters",
                    description="Every schedule: its cron and time zone, overlap policy, "
                                "whether it is paused, its next slot, its latest run and "
                                "its counters (slots fired; skipped as too old after "
                                "downtime; skipped while the previous run went on).")
    for name, text in (("pause", "stop firing (a run already started goes on)"),
                       ("resume", "fire again from the next slot after now"),
                       ("trigger", "start a run of the schedule now"),
                       ("delete", "delete the schedule (its runs stay)")):
        cmd = cmds.add_parser(name, parents=[common], help=text,
                              description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("id", help="the schedule id")
    back = cmds.add_parser("backfill", parents=[common],
                           help="start the runs of every slot in a range",
                           description="Start the runs of every slot from START (inclusive) "
                                       "to END (exclusive), whatever the overlap policy. A "
                                       "slot that already has its run is left alone.")
    back.add_argument("id", help="the schedule id")
    back.add_argument("--start", type=moment, required=True, metavar="TIME",
                      help="ISO 8601 (e.g. 2030-01-01T00:00Z; without an offset, UTC)")
    back.add_argument("--end", type=moment, required=True, metavar="TIME",
                      help="ISO 8601, exclusive")


async def run(args: argparse.Namespace) -> int:
    """The ``schedules`` commands."""
    async with Engine(database_url(args), worker=False, table_prefix=args.prefix) as engine:
        schedules, command = engine.schedules, args.schedules_command
        sid: str = getattr(args, "id", "")  # every command but list names a schedule
        if command == "list":
            print_schedules(await schedules.list())
        elif command == "pause":
            await schedules.pause(sid)
            print(f"schedule {sid} paused")
        elif command == "resume":
            await schedules.resume(sid)
            info = await schedules.get(sid)
            print(f"schedule {sid} resumed; next slot {_fmt_time(info.next_fire)}")
        elif command == "trigger":
            handle = await schedules.trigger(sid)
            print(f"schedule {sid} triggered: run {handle.id}")
        elif command == "backfill":
            handles = await schedules.backfill(sid, args.start, args.end)
            print(f"schedule {sid}: {len(handles)} slot(s) from {_fmt_time(args.start)} to "
                  f"{_fmt_time(args.end)} have their run")
        elif command == "delete":
            if not await schedules.delete(sid):
                raise ScheduleNotFound(sid)
            print(f"schedule {sid} deleted; its runs stay")
    return 0


def print_schedules(schedules: list[ScheduleInfo]) -> None:
    """One line per schedule."""
    rows = [(s.id, s.workflow, s.cron, s.timezone, s.overlap.value,
             "paused" if s.paused else "active", _fmt_time(s.next_fire),
             s.last_run_id or "-", str(s.fired), f"{s.skipped_missed}/{s.skipped_overlap}")
            for s in schedules]
    print(table(rows, ("ID", "WORKFLOW", "CRON", "TIMEZONE", "OVERLAP", "STATE", "NEXT",
                        "LAST RUN", "FIRED", "SKIPPED (MISSED/OVERLAP)")))

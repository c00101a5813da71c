"""The ``perdure`` command: its parser, and the dispatch to one module per command group.

Plain argparse (the core has no dependencies), shaped for a person: ``--db`` and ``--prefix``
are accepted before or after the subcommand, a mistake is reported with the usage of the
(sub)command it was made in and the nearest known option, and output cut short by a closed
pipe (``perdure runs show X | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from perdure import __version__
from perdure.cli import dashboard, hosts, lifecycle, outbox, runs, schedules, worker
from perdure.cli.bulk import add_bulk_parser
from perdure.cli.options import (
    CommandError,
    add_database_options,
    port,
    positive_int,
    seconds,
)
from perdure.cli.prune import add_prune_parser
from perdure.cli.runs_list import add_list_parser, add_show_parser
from perdure.errors import PerdureError
from perdure.observe import logs

__all__ = ["main"]

#: what a shell reports for a process killed by SIGPIPE (128 + 13): the reader went away
EXIT_BROKEN_PIPE = 141
#: the choices of ``--log-format``
LOG_FORMATS = ("text", "json")


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose subcommands report their own mistakes.

    Stock argparse lets a subcommand pass an unknown option up to the top-level parser, which
    then prints the top-level usage; here each parser refuses what it does not know, with its
    own usage and the closest option it has.
    """

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggest(extras)}")
        return parsed, extras

    def _suggest(self, extras: list[str]) -> str:
        import difflib  # only on this error path: `perdure --help` stays quick to start

        for extra in extras:
            if extra.startswith("-"):
                close = difflib.get_close_matches(extra.split("=", 1)[0],
                                                  list(self._option_string_actions), n=1)
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="perdure", description="Durable workflows for Python.",
                epilog="Times are shown in UTC (ISO 8601, 'Z'). Exit status: 0 on success, 2 "
                       "for a usage, configuration or database error.")
    p.add_argument("--version", action="version",
                   version=f"perdure {__version__} (Python {sys.version.split()[0]})")
    add_database_options(p, suppress=False)
    common = _Parser(add_help=False)
    add_database_options(common, suppress=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", parents=[common], help="run a worker for an app's workflows",
                       description="Claim and drive runs until SIGTERM or Ctrl-C, then drain: "
                                   "stop claiming, let runs finish for the grace period, hand "
                                   "back the rest and exit. Waits for the database if it is "
                                   "not reachable yet.")
    w.add_argument("target", metavar="MODULE:ATTR",
                   help="an Engine, a workflow or a list of workflows (e.g. myapp.flows:engine)")
    w.add_argument("--concurrency", type=positive_int, metavar="N",
                   help="runs driven at once (default: the engine's, 100)")
    w.add_argument("--grace", type=seconds, metavar="SECONDS",
                   help="on SIGTERM, how long in-flight runs may finish before they are handed "
                        "back (default: the engine's shutdown_grace, 10)")
    w.add_argument("--log-format", choices=LOG_FORMATS,
                   help="log lines as text or as one JSON object each (default: "
                        "$PERDURE_LOG_FORMAT, else text); the level is $PERDURE_LOG (default "
                        "INFO for a worker)")
    w.add_argument("--metrics-port", type=port, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics, and the health "
                        "endpoints there too (needs perdure[metrics]; 0: a free port)")
    w.add_argument("--health-port", type=port, metavar="PORT",
                   help="serve /livez and /readyz (and /healthz) for Kubernetes probes on this "
                        "port (0: a free port)")
    w.add_argument("--tracing", action="store_true",
                   help="make OpenTelemetry spans with the global tracer provider (set up by "
                        "your app, or by running under opentelemetry-instrument); needs "
                        "perdure[otel]")
    w.add_argument("--http-host", default="0.0.0.0", metavar="HOST",
                   help="the address the metrics and health endpoints listen on (default: "
                        "%(default)s, every interface)")

    runs_parser = sub.add_parser("runs", help="find, inspect, cancel, resume and prune runs",
                                 description="Find, inspect, cancel, resume and prune runs.")
    runs_sub = runs_parser.add_subparsers(dest="runs_command", required=True,
                                          metavar="{list,show,cancel,resume,prune}")
    ls = add_list_parser(runs_sub, common)
    add_show_parser(runs_sub, common)
    add_bulk_parser(runs_sub, common, "cancel")
    add_bulk_parser(runs_sub, common, "resume")
    add_prune_parser(runs_sub, common)

    sub.add_parser("queues", parents=[common], help="queues and limits: depth, running, parked",
                   description="Every queue (runs in line, running, parked, parked on a "
                               "step's limit, the oldest wait, runs no live worker's labels "
                               "admit) and every limit (slots in use, grants in the rate "
                               "window, runs parked on it).")
    res = sub.add_parser("resume", parents=[common], help="re-drive a blocked or failed run",
                         description="Re-drive a blocked or failed run (after deploying a fix).")
    res.add_argument("id", help="the run id")
    sub.add_parser("migrate", parents=[common], help="create or upgrade the schema",
                   description="Create or upgrade the schema and say which migrations it "
                               "applied.")
    lifecycle.add_commands(sub, runs_sub, ls, common)
    sig = sub.add_parser("signal", parents=[common], help="send a signal to a run",
                         description="Send a signal to a run; it is buffered until the run "
                                     "waits for it.")
    sig.add_argument("id", help="the run id")
    sig.add_argument("name", help="the signal name")
    sig.add_argument("payload", nargs="?", default="null",
                     help="a JSON payload (default: %(default)s)")
    sig.add_argument("--key", help="idempotency key: a resend with the same key is a no-op")
    can = sub.add_parser("cancel", parents=[common], help="cancel a run",
                         description="Cancel a run: it may run cleanup steps, then its "
                                     "completed steps are compensated.")
    can.add_argument("id", help="the run id")
    outbox.add_parser(sub, common)
    hosts.add_parsers(sub, common)
    schedules.add_parser(sub, common)
    dashboard.add_parser(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perdure`` command; returns the exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, and point stdout at
        # /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    # The command line as given, for messages that repeat it (the next page of a listing).
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # A worker tells what happens to each run (INFO); the other commands only what went wrong.
    level = os.environ.get("PERDURE_LOG", "INFO" if args.command == "worker" else "WARNING")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        return _fail(f"PERDURE_LOG={level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    fmt = getattr(args, "log_format", None) or os.environ.get("PERDURE_LOG_FORMAT") or "text"
    if fmt not in LOG_FORMATS:
        return _fail(f"PERDURE_LOG_FORMAT={fmt!r} is not a log format (text, json)")
    logs.configure(level, fmt)
    try:
        if args.command == "worker":
            code = worker.run(args)
        elif args.command in hosts.COMMANDS:
            code = hosts.run(args)
        elif args.command == "schedules":
            code = asyncio.run(schedules.run(args))
        elif args.command == "dashboard":
            code = dashboard.run(args)
        elif args.command == "outbox":
            code = asyncio.run(outbox.run(args))
        else:
            code = asyncio.run(runs.run(args))
        sys.stdout.flush()  # here, so that a closed pipe is noticed while we can handle it
        return code
    except PerdureError as exc:
        return _fail(f"{type(exc).__name__}: {exc}")
    except CommandError as exc:
        return _fail(str(exc))
    except json.JSONDecodeError as exc:
        return _fail(f"the payload is not valid JSON: {exc}")
    except KeyboardInterrupt:
        return 130


def _fail(message: Any) -> int:
    print(f"perdure: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``perdure`` command: run a worker, inspect runs and their journals, resume, migrate."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from perdure.definitions import Workflow
from perdure.engine import Engine
from perdure.errors import PerdureError
from perdure.records import JournalEntry, RunInfo

__all__ = ["main"]

DEFAULT_DB = "sqlite:///perdure.db"


def _db(args: argparse.Namespace) -> str:
    return str(args.db or os.environ.get("PERDURE_DATABASE_URL") or DEFAULT_DB)


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
    url = _db(args)
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
    print(f"perdure worker {engine.worker_id} driving {', '.join(sorted(engine.workflows))} "
          f"on {engine!r}", flush=True)
    try:
        await stop.wait()
    finally:
        print("draining: no new claims; finishing or handing back in-flight runs", flush=True)
        await engine.close(grace)


def _fmt_time(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _short(text: str | None, width: int = 48) -> str:
    if text is None:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_runs(runs: list[RunInfo]) -> None:
    rows = [(r.id, r.workflow, r.version, r.status.value, _fmt_time(r.created_at),
             _fmt_time(r.updated_at), r.parent_id or "-") for r in runs]
    print(_table(rows, ("ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "UPDATED", "PARENT")))


def _print_run(info: RunInfo, journal: list[JournalEntry]) -> None:
    print(f"run       {info.id}")
    print(f"workflow  {info.workflow} (version {info.version})")
    print(f"status    {info.status.value}")
    if info.parent_id:
        print(f"parent    {info.parent_id}")
    if info.error is not None:
        print(f"error     {info.error.type}: {info.error.message}")
    if info.blocked_reason:
        print(f"blocked   {info.blocked_reason}")
    print(f"created   {_fmt_time(info.created_at)}   updated {_fmt_time(info.updated_at)}")
    print()
    rows = []
    for e in journal:
        err = e.error_info
        outcome = _short(e.output) if err is None else _short(f"{err.type}: {err.message}")
        rows.append((str(e.seq), e.kind, e.name, e.status, str(e.attempts), outcome,
                     _fmt_time(e.finished_at)))
    print(_table(rows, ("SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "OUTCOME", "AT")))


async def _client(args: argparse.Namespace) -> int:
    async with Engine(_db(args), worker=False, table_prefix=args.prefix) as engine:
        if args.command == "migrate":
            print(f"schema is up to date on {engine!r}")
        elif args.command == "runs" and args.runs_command == "list":
            _print_runs(await engine.list_runs(status=args.status, workflow=args.workflow,
                                               limit=args.limit))
        elif args.command == "runs" and args.runs_command == "show":
            _print_run(await engine.status(args.id), await engine.journal(args.id))
        elif args.command == "resume":
            await engine.resume(args.id)
            print(f"run {args.id} resumed: a worker will drive it now")
        elif args.command == "signal":
            payload = json.loads(args.payload)
            await engine.signal(args.id, args.name, payload, idempotency_key=args.key)
            print(f"signal {args.name!r} sent to run {args.id}")
        elif args.command == "cancel":
            changed = await engine.cancel(args.id)
            print(f"run {args.id}: cancellation requested" if changed
                  else f"run {args.id} had already finished; nothing to cancel")
    return 0


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
            engine = _worker_engine(load_target(args.target), args)
            asyncio.run(_run_worker(engine, args.grace))
            return 0
        return asyncio.run(_client(args))
    except PerdureError as exc:
        print(f"perdure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"perdure: the payload is not valid JSON: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

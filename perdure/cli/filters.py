"""The filters every command that selects runs shares (``runs list``, ``runs cancel``,
``runs resume``): one option per filter, and ``--where NAME=VALUE`` for the same filters
written as expressions, as a script or a query language would.
"""

from __future__ import annotations

import argparse
import shlex
from datetime import UTC, datetime
from typing import Any

from perdure.cli.options import CommandError
from perdure.records import RunStatus

__all__ = ["WHERE_NAMES", "add_filter_options", "describe", "filters_from", "parse_time"]

#: what ``--where`` accepts before the ``=`` (``tag.KEY`` names a tag)
WHERE_NAMES = ("status", "workflow", "version", "parent", "queue", "created_after",
               "created_before", "tag.KEY")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The filter options (each may be given several times where that makes sense)."""
    group = parser.add_argument_group(
        "filters", "A run matches when it matches every filter given (several --status: any "
                   "of them; several --tag: all of them).")
    group.add_argument("--status", action="append", choices=[s.value for s in RunStatus],
                       help="runs in this status (repeat for several)")
    group.add_argument("--workflow", metavar="NAME", help="runs of this workflow")
    group.add_argument("--version", metavar="V", help="runs of this workflow version")
    group.add_argument("--queue", metavar="NAME", help="runs of this queue")
    group.add_argument("--tag", action="append", metavar="KEY=VALUE",
                       help="runs with this tag (repeat: with all of them)")
    group.add_argument("--created-after", metavar="TIME",
                       help="runs created at or after TIME (ISO 8601; UTC unless it has an "
                            "offset)")
    group.add_argument("--created-before", metavar="TIME", help="runs created before TIME")
    group.add_argument("--parent", metavar="ID", help="children of this run")
    group.add_argument("--where", action="append", metavar="NAME=VALUE",
                       help="the same filters as expressions: status=failed, workflow=W, "
                            "version=V, parent=ID, queue=Q, created_after=TIME, "
                            "created_before=TIME, tag.KEY=VALUE (several in one argument, "
                            "separated by spaces)")


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC (the time the CLI prints)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{what} {text!r} is not a time: use ISO 8601, such as "
                           "2024-05-01 or 2024-05-01T12:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def filters_from(args: argparse.Namespace) -> dict[str, Any]:
    """The ``list_runs`` keyword filters the options and ``--where`` expressions name; a
    filter given twice with different values, or an unknown name, is a ``CommandError``."""
    found: dict[str, Any] = {}
    statuses: list[str] = list(getattr(args, "status", None) or [])
    tags: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        if name in found and found[name] != value:
            raise CommandError(f"the {name} filter is given twice ({found[name]!r} and "
                               f"{value!r})")
        found[name] = value

    def put_tag(pair: str, where: str) -> None:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise CommandError(f"{where} {pair!r}: write KEY=VALUE")
        if key in tags and tags[key] != value:
            raise CommandError(f"tag {key!r} is given twice ({tags[key]!r} and {value!r})")
        tags[key] = value

    for name in ("workflow", "version", "parent", "queue"):
        if getattr(args, name, None) is not None:
            put(name, getattr(args, name))
    for name in ("created_after", "created_before"):
        text = getattr(args, name, None)
        if text is not None:
            put(name, parse_time(text, f"--{name.replace('_', '-')}"))
    for pair in getattr(args, "tag", None) or []:
        put_tag(pair, "--tag")
    for expression in getattr(args, "where", None) or []:
        try:
            parts = shlex.split(expression)
        except ValueError as exc:
            raise CommandError(f"--where {expression!r}: {exc}") from None
        for part in parts:
            name, eq, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if not eq:
                raise CommandError(f"--where {part!r}: write NAME=VALUE, such as "
                                   "status=failed or tag.customer=c-7")
            if name.startswith("tag."):
                put_tag(f"{name[4:]}={value}", "--where tag.KEY=VALUE")
            elif name == "status":
                statuses += [s for s in value.split(",") if s]
            elif name in ("workflow", "version", "parent", "queue"):
                put(name, value)
            elif name in ("created_after", "created_before"):
                put(name, parse_time(value, f"--where {name}"))
            else:
                import difflib

                close = difflib.get_close_matches(name, [n.split(".")[0] for n in WHERE_NAMES],
                                                  n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise CommandError(f"--where: unknown filter {name!r}{hint}; the filters are "
                                   f"{', '.join(WHERE_NAMES)}")
    if statuses:
        found["status"] = sorted(set(statuses))
    if tags:
        found["tags"] = tags
    return found


def describe(filters: dict[str, Any]) -> str:
    """The filters as ``--where`` would write them."""
    parts: list[str] = []
    for name, value in sorted(filters.items()):
        if name == "tags":
            parts += [f"tag.{k}={v}" for k, v in sorted(value.items())]
        elif name == "status":
            parts.append(f"status={','.join(value)}")
        elif isinstance(value, datetime):
            parts.append(f"{name}={value.isoformat()}")
        else:
            parts.append(f"{name}={value}")
    return shlex.join(parts)

"""What each page shows, gathered through the engine's public API (never the storage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from perdure.dashboard import charts
from perdure.dashboard.filters import RunsQuery
from perdure.engine.engine import Engine
from perdure.errors import PerdureError, RunNotFound
from perdure.records import JournalEntry, RunInfo, RunStatus

__all__ = ["WINDOWS", "overview", "run_page", "runs_page"]

#: the overview's chart windows: (window, bucket)
WINDOWS = {"hour": (timedelta(hours=1), timedelta(minutes=1)),
           "day": (timedelta(days=1), timedelta(minutes=10))}
#: children shown per run (the rest: the runs list filtered by parent)
CHILDREN = 50
#: grandchildren are looked up for this many children
GRANDCHILDREN_OF = 10
#: ancestors shown above a run
ANCESTORS = 5
FLAGGED = 10


async def overview(engine: Engine, window: str) -> dict[str, Any]:
    """Counts, the activity chart, workers, queues and limits, stranded and blocked runs."""
    span, bucket = WINDOWS.get(window, WINDOWS["hour"])
    activity = await engine.activity(window=span, bucket=bucket)
    return {
        "counts": await engine.unfinished_counts(),
        "activity": activity,
        "chart": charts.activity_chart(activity),
        "window": window if window in WINDOWS else "hour",
        "workers": await engine.workers(),
        "stranded": await engine.stranded_runs(limit=FLAGGED),
        "blocked": await engine.list_runs(status=RunStatus.BLOCKED, limit=FLAGGED),
        "flow": await engine.queues(),
    }


async def runs_page(engine: Engine, query: RunsQuery) -> dict[str, Any]:
    """One page of the runs list under the query's filters."""
    page = await engine.list_runs(**query.kwargs(), limit=query.limit,
                                  cursor=query.cursor or None)
    return {"runs": list(page), "next_cursor": page.next_cursor}


def _streams(journal: Sequence[JournalEntry]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for e in journal:
        if e.kind in ("stream", "stream_close"):
            s = found.setdefault(e.name, {"name": e.name, "items": 0, "closed": False,
                                          "last": None})
            if e.kind == "stream":
                s["items"] += 1
            else:
                s["closed"] = True
            s["last"] = e.finished_at
    return list(found.values())


async def run_page(engine: Engine, run_id: str, now: float) -> dict[str, Any]:
    """A run: its status and payloads, family, events and streams, timeline and journal.
    Raises ``RunNotFound``."""
    info = await engine.status(run_id)
    journal = await engine.journal(run_id)
    history = await engine.history(run_id)
    children = list(await engine.list_runs(parent=run_id, limit=CHILDREN + 1))
    more_children = len(children) > CHILDREN
    children = children[:CHILDREN]
    tree = []
    for i, child in enumerate(children):
        grand = (list(await engine.list_runs(parent=child.id, limit=CHILDREN))
                 if i < GRANDCHILDREN_OF else [])
        tree.append((child, grand))
    ancestors: list[RunInfo] = []
    parent = info.parent_id
    while parent and len(ancestors) < ANCESTORS:
        try:
            up = await engine.status(parent)
        except RunNotFound:
            break
        ancestors.insert(0, up)
        parent = up.parent_id
    events: dict[str, str] = {}
    events_error = None
    try:
        events = {k: json.dumps(v, indent=2, ensure_ascii=False, default=str)
                  for k, v in (await engine.handle(run_id).events()).items()}
    except PerdureError as exc:  # e.g. an event this process cannot decrypt
        events_error = f"{type(exc).__name__}: {exc}"
    return {
        "info": info, "journal": journal, "history": history, "tree": tree,
        "more_children": more_children, "ancestors": ancestors, "events": events,
        "events_error": events_error, "streams": _streams(journal),
        "timeline": charts.timeline(info, journal, now, {c.id: c for c in children}),
        "last_seq": journal[-1].seq + 1 if journal else 0,
    }

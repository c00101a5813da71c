"""``perdure queues``: every queue and every limit, as the database holds them now.

Per queue: runs in line (DEPTH), running, parked (WAITING; of them, PARKED ON LIMIT waiting for a
step's limit), how long the oldest run in line has waited, and how many in line no live
worker's labels admit (NO WORKER: they wait until such a worker starts). Runs routed by labels
without a queue form the line ``(routed)``. Per limit: slots in use, grants in the rate's
current window, runs parked on it and the oldest wait.
"""

from __future__ import annotations

from perdure.cli.output import table
from perdure.flow.definitions import Rate
from perdure.flow.records import FlowReport

__all__ = ["print_queues"]


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _rate(rate: Rate | None) -> str:
    return "-" if rate is None else f"{rate.count}/{rate.per:g}s"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def print_queues(report: FlowReport) -> None:
    """The queues table, then the limits table."""
    if not report.queues and not report.limits:
        print("no queues or limits are defined in this database")
        return
    if report.queues:
        rows = [(q.name or "(routed)",
                 _limit(q.concurrency), _limit(q.per_worker), _limit(q.per_key_concurrency),
                 _rate(q.rate), str(q.depth), str(q.running), str(q.waiting),
                 str(q.parked_on_limit), _age(q.oldest_wait), str(q.unroutable))
                for q in report.queues]
        print(table(rows, ("QUEUE", "CONCURRENCY", "PER WORKER", "PER KEY", "RATE", "DEPTH",
                           "RUNNING", "WAITING", "PARKED ON LIMIT", "OLDEST WAIT",
                           "NO WORKER")))
    if report.limits:
        if report.queues:
            print()
        limit_rows = [(lim.name, _limit(lim.concurrency), _rate(lim.rate), str(lim.in_use),
                 str(lim.in_window), str(lim.parked), _age(lim.oldest_wait))
                for lim in report.limits]
        print(table(limit_rows, ("LIMIT", "CONCURRENCY", "RATE", "IN USE", "IN WINDOW", "PARKED",
                           "OLDEST WAIT")))

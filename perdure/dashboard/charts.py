"""The charts, as geometry for the SVG templates: runs over time, and a run's timeline.

Drawn on the server as inline SVG (not by a script in the browser): the page is complete and
readable without JavaScript, no charting library is shipped or vendored, every label goes
through the same autoescaping as the rest of the page, and the browser tests can read the bars
as elements. A chart is a few kilobytes of markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from perdure.dashboard.formatting import duration, exact
from perdure.records import Activity, JournalEntry, RunInfo

__all__ = ["Bar", "Series", "Timeline", "activity_chart", "timeline"]

#: the drawing's width in SVG units (it scales to the page)
WIDTH = 960
LABEL = 220  #: the timeline's left column, for the entries' names
ROW = 22
#: at most this many journal entries are drawn (the table below lists every one)
MAX_BARS = 400

#: what each kind of bar is, for its colour (CSS class) and the legend
KINDS = {"step": "step", "compensation": "compensation", "sleep": "sleep", "signal": "wait",
         "request": "wait", "callback": "wait", "join": "wait", "child": "child"}


@dataclass(frozen=True, slots=True)
class Series:
    """One line of the activity chart."""

    name: str
    points: str  #: SVG polyline points
    total: int


@dataclass(slots=True)
class ActivityChart:
    """The activity chart's geometry."""

    width: int
    height: int
    series: list[Series]
    ticks: list[tuple[float, str]]  #: x, label of the time axis
    ymax: int
    bars: list[tuple[float, float, str]] = field(default_factory=list)  #: x, w, title


def activity_chart(activity: Activity, *, height: int = 180) -> ActivityChart:
    """Lines of runs started, completed, failed and cancelled per bucket."""
    n = max(activity.buckets, 1)
    plot_w, plot_h, left, top = WIDTH - 50, height - 30, 40, 8
    data = {"started": activity.started, "completed": activity.completed,
            "failed": activity.failed, "cancelled": activity.cancelled}
    ymax = max([1, *(max(v, default=0) for v in data.values())])
    step = plot_w / n

    def xy(i: int, v: int) -> str:
        return f"{left + (i + 0.5) * step:.1f},{top + plot_h - v / ymax * plot_h:.1f}"

    series = [Series(name, " ".join(xy(i, v) for i, v in enumerate(values)), sum(values))
              for name, values in data.items()]
    since = activity.since.timestamp()
    every = max(1, n // 6)
    ticks = [(left + i * step, exact(since + i * activity.bucket)[11:16])
             for i in range(0, n + 1, every)]
    # Hover targets: one transparent column per bucket, titled with its counts.
    bars = [(left + i * step, step,
             f"{exact(since + i * activity.bucket)[:16]}Z: "
             + ", ".join(f"{k} {v[i]}" for k, v in data.items()))
            for i in range(activity.buckets)]
    return ActivityChart(WIDTH, height, series, ticks, ymax, bars)


@dataclass(frozen=True, slots=True)
class Bar:
    """One entry of a run's timeline."""

    y: float
    x: float
    w: float
    css: str  #: the kind's class, plus ``failed`` / ``retrying`` / ``open``
    label: str
    title: str
    seq: int
    retries: tuple[float, ...] = ()  #: x of a mark per failed attempt before the last


@dataclass(slots=True)
class Timeline:
    """A run's timeline geometry."""

    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    start: float
    end: float
    hidden: int  #: entries past MAX_BARS, not drawn


def _span(entry: JournalEntry, previous_end: float, now: float,
          children: Mapping[str, RunInfo]) -> tuple[float, float, bool]:
    """Where an entry starts and ends, and whether it is still open."""
    start = entry.started_at if entry.started_at is not None else entry.finished_at
    if entry.kind == "child" and entry.output:
        child = children.get(entry.output.strip('"'))
        if child is not None:
            # The child's own life, not the instant its start was journaled.
            end = child.updated_at.timestamp() if child.status.terminal else now
            return child.created_at.timestamp(), end, not child.status.terminal
    if start is None:
        start = previous_end
    if entry.finished_at is not None and entry.status in ("completed", "failed", "cancelled"):
        return start, max(entry.finished_at, start), False
    if entry.due_at is not None:
        return start, max(entry.due_at, start), True
    return start, max(now, start), True


def timeline(info: RunInfo, journal: Sequence[JournalEntry], now: float,
             children: Mapping[str, RunInfo]) -> Timeline:
    """One bar per journal entry, positioned by its start and end on the run's time axis:
    steps and compensations from their first attempt to their outcome (a mark per failed
    attempt before it), sleeps and waits until they fired (or are due), children for their
    own run's life."""
    begin = info.created_at.timestamp()
    finish = info.updated_at.timestamp() if info.status.terminal else now
    spans = []
    previous = begin
    for entry in journal[:MAX_BARS]:
        s, e, open_ = _span(entry, previous, now, children)
        spans.append((entry, s, e, open_))
        previous = e if not open_ else previous
        finish = max(finish, e)
    begin = min([begin, *(s for _, s, _, _ in spans)])
    total = max(finish - begin, 1e-3)
    plot = WIDTH - LABEL - 10
    bars = []
    for row, (entry, s, e, open_) in enumerate(spans):
        x = LABEL + (s - begin) / total * plot
        w = max((e - s) / total * plot, 2.0)
        kind = KINDS.get(entry.kind, "other")
        css = [kind]
        if entry.status == "failed":
            css.append("failed")
        elif entry.status == "retrying":
            css.append("retrying")
        if open_:
            css.append("open")
        # A mark between attempts: each one before the last failed.
        failures = max(entry.attempts - 1, 0) if kind in ("step", "compensation") else 0
        marks = tuple(x + w * (i + 1) / (failures + 1) for i in range(failures))
        attempts = f", {entry.attempts} attempts" if entry.attempts > 1 else ""
        err = entry.error_info
        title = (f"#{entry.seq} {entry.kind} {entry.name}: {entry.status}{attempts}; "
                 f"{exact(s)} → {exact(e) if not open_ else 'now'} ({duration(e - s)})"
                 + (f"; {err.type}: {err.message[:200]}" if err is not None else ""))
        bars.append(Bar(8 + row * ROW, x, w, " ".join(css),
                        f"{entry.seq} {entry.kind} {entry.name}"[:34], title, entry.seq,
                        marks))
    ticks = [(LABEL + plot * i / 4, duration(total * i / 4)) for i in range(5)]
    return Timeline(WIDTH, 8 + max(len(bars), 1) * ROW + 24, bars, ticks, begin, finish,
                    max(len(journal) - MAX_BARS, 0))

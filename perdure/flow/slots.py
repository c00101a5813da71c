"""When a schedule fires: the slots of a cron expression in an IANA time zone.

The cron arithmetic is ``cronsim``'s (an optional extra: ``pip install 'perdure[schedules]'``,
imported here only, and only when a schedule is used). It follows Debian's cron, DST
included: a job at a fixed local time that falls in the hour skipped by a spring-forward
change runs once, right after the change (02:30 in ``Europe/Berlin`` fires at 03:00 CEST); one
that falls in the hour repeated by a fall-back change runs once, at its first occurrence;
"every hour" runs every real hour (23 on a spring-forward day, 25 on a fall-back day).

A slot is a unix time (float seconds). Slots are computed by stepping from the previous
slot, never from an arbitrary "now" inside a repeated hour (cronsim can then answer a time
before its start), and every answer is checked to move forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from perdure.errors import InvalidConfiguration

__all__ = ["EXTRA", "check_cron", "check_timezone", "iterate", "next_after", "slot_run_id", "zone"]

#: the optional extra that brings the cron library
EXTRA = "pip install 'perdure[schedules]'"


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError as exc:
        raise InvalidConfiguration(
            f"schedules need the cron library cronsim: {EXTRA}") from exc
    return cronsim


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``InvalidConfiguration`` naming ``timezone`` if unknown)."""
    return check_timezone(name)


def check_timezone(name: object) -> ZoneInfo:
    """``name`` as a ``ZoneInfo``; ``InvalidConfiguration`` naming the argument otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidConfiguration(f"timezone must be an IANA time zone name such as "
                                   f"'Europe/Berlin' or 'UTC', not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: a name zoneinfo refuses outright (an absolute path, "..", a NUL).
        raise InvalidConfiguration(f"timezone {name!r} is not a known IANA time zone (such "
                                   "as 'Europe/Berlin' or 'UTC')") from None


def check_cron(expr: object, timezone: str) -> str:
    """``expr`` if cronsim accepts it (5 fields, or 6 with seconds first);
    ``InvalidConfiguration`` naming ``cron`` and what is wrong otherwise."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidConfiguration(f"cron must be a cron expression such as '0 * * * *', "
                                   f"not {expr!r}")
    cronsim = _cronsim()
    try:
        cronsim.CronSim(expr, datetime(2030, 1, 1, tzinfo=zone(timezone)))
    except cronsim.CronSimError as exc:
        raise InvalidConfiguration(f"cron {expr!r} is not a valid cron expression: "
                                   f"{exc}") from None
    return expr


def iterate(expr: str, timezone: str, after: float) -> Iterator[float]:
    """The slots strictly after ``after``, in order (for up to 50 years)."""
    tz = zone(timezone)
    last = after
    # cronsim ends its iteration when nothing matches within 50 years.
    for match in _cronsim().CronSim(expr, datetime.fromtimestamp(after, tz)):
        slot = match.timestamp()
        if slot > last:  # forward only (see the module's docstring)
            last = slot
            yield slot


def next_after(expr: str, timezone: str, after: float) -> float | None:
    """The first slot strictly after ``after``; None if there is none in cronsim's horizon
    (50 years: a day that never comes, such as February 30th's cousins)."""
    return next(iterate(expr, timezone, after), None)


def slot_run_id(schedule_id: str, slot: float) -> str:
    """The id of the run that fires ``slot``: the schedule's id and the slot's UTC time, so
    two workers (or one restarted mid-firing) can never start a slot twice."""
    moment = datetime.fromtimestamp(slot, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return f"{schedule_id}@{text}Z"

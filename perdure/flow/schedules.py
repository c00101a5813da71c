"""Schedules: a workflow started on a cron expression, as a row that any worker fires.

``Schedule(id, workflow, *args, cron=..., timezone=..., overlap=..., catchup=...)`` is the
spec; ``engine.schedules.create(schedule)`` stores it (see :mod:`perdure.engine.schedules`).
Each firing is a run whose id is the schedule's id and the slot's UTC time
(``digest-hourly@2030-01-01T10:00:00Z``), so a slot can never start twice, whichever worker
fires it and however often one dies mid-firing. The cron library is the optional extra
``perdure[schedules]`` (:mod:`perdure.flow.slots`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from perdure import validate
from perdure.errors import InvalidConfiguration
from perdure.flow.slots import check_cron, check_timezone
from perdure.storage.port import ScheduleRow

__all__ = ["DEFAULT_CATCHUP", "Overlap", "Schedule", "ScheduleInfo"]

#: how old a missed slot may be and still fire after downtime, unless a schedule says otherwise
DEFAULT_CATCHUP = timedelta(hours=1)
#: the longest schedule id (its runs' ids add the slot's time to it; a run id holds 255)
MAX_ID = 200


class Overlap(StrEnum):
    """What a slot does when the schedule's previous run is still going."""

    SKIP = "skip"                  #: the slot is skipped (and counted)
    BUFFER_ONE = "buffer_one"      #: it starts when the previous run ends; at most one waits
    ALLOW = "allow"                #: it starts anyway: runs overlap
    CANCEL_OTHER = "cancel_other"  #: the previous run is cancelled and the slot starts now


@dataclass(frozen=True, init=False, eq=False)
class Schedule:
    """A workflow to start on a cron expression: ``Schedule("digest-hourly", send_digest,
    "all", cron="0 * * * *", timezone="Europe/Berlin", overlap="skip",
    catchup=timedelta(hours=6))``.

    ``workflow`` is a ``@workflow`` (its arguments are encoded now, so a bad one is refused
    here) or a workflow's name (encoded by ``engine.schedules.create``, which must know it).
    ``args`` and ``kwargs`` are the arguments of every run. ``cron`` is a cron expression
    (five fields, or six with seconds first), read in ``timezone`` (an IANA name; daylight
    saving follows the IANA database: a daily 02:30 fires once on both change days).
    ``overlap`` is what a slot does while the previous firing's run still goes (see
    :class:`Overlap`; default ``skip``). After downtime, missed slots younger than ``catchup``
    (a ``timedelta`` or seconds; default one hour) fire, oldest first; older ones are skipped
    and counted. Bad values raise ``InvalidConfiguration`` naming the argument.
    """

    id: str
    workflow: str  #: the workflow's name
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    cron: str
    timezone: str
    overlap: Overlap
    catchup: timedelta
    #: the ``@workflow`` given (None when given by name)
    definition: Any
    #: the encoded arguments (None until the engine encodes them, for a workflow by name)
    input: str | None

    def __init__(self, id: str, workflow: Any, *args: Any, cron: str, timezone: str = "UTC",
                 overlap: Overlap | str = Overlap.SKIP,
                 catchup: timedelta | float = DEFAULT_CATCHUP,
                 kwargs: Mapping[str, Any] | None = None) -> None:
        validate.name(id, "schedule id", max_length=MAX_ID)
        if isinstance(workflow, str):
            name, definition = validate.name(workflow, "workflow"), None
        elif isinstance(getattr(workflow, "name", None), str) and hasattr(workflow, "codec"):
            name, definition = workflow.name, workflow
        else:
            raise InvalidConfiguration(f"workflow must be a @workflow or a workflow's name, "
                                       f"not {workflow!r}")
        check_timezone(timezone)
        check_cron(cron, timezone)
        try:
            policy = Overlap(overlap)
        except ValueError:
            raise InvalidConfiguration(
                f"overlap must be one of {', '.join(repr(o.value) for o in Overlap)}, not "
                f"{overlap!r}") from None
        window = validate.seconds(catchup, "catchup", timedeltas=True)
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise InvalidConfiguration(f"kwargs must be a mapping of argument names to "
                                       f"values, not {type(kwargs).__name__}")
        keywords = dict(kwargs or {})
        text = None if definition is None else definition.codec.encode_args(args, keywords)
        for field, value in (("id", id), ("workflow", name), ("args", tuple(args)),
                             ("kwargs", keywords), ("cron", cron), ("timezone", timezone),
                             ("overlap", policy), ("catchup", timedelta(seconds=window)),
                             ("definition", definition), ("input", text)):
            object.__setattr__(self, field, value)

    def __repr__(self) -> str:
        return (f"Schedule({self.id!r}, {self.workflow!r}, cron={self.cron!r}, "
                f"timezone={self.timezone!r}, overlap={self.overlap.value!r}, "
                f"catchup={self.catchup!r})")


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule: its spec, its state and its counters (times in UTC)."""

    id: str
    workflow: str
    version: str
    cron: str
    timezone: str
    overlap: Overlap
    catchup: timedelta
    paused: bool
    #: the next slot to fire (None: the expression has no more)
    next_fire: datetime | None
    #: the run of the latest firing (or trigger), and the slot it fired
    last_run_id: str | None
    last_fired: datetime | None
    #: buffer_one: the slot waiting for the previous run to end
    buffered: datetime | None
    #: slots fired
    fired: int
    #: slots skipped as older than ``catchup`` after downtime
    skipped_missed: int
    #: slots skipped (or superseded) because the previous run was still going
    skipped_overlap: int
    created_at: datetime
    updated_at: datetime
    #: the encoded arguments of every run (JSON text keyed by parameter)
    input: str

    @classmethod
    def from_row(cls, row: ScheduleRow) -> ScheduleInfo:
        """Build from the storage row."""
        created, updated = _dt(row.created_at), _dt(row.updated_at)
        assert created is not None and updated is not None
        return cls(row.id, row.workflow, row.version, row.cron, row.timezone,
                   Overlap(row.overlap), timedelta(seconds=row.catchup), row.paused,
                   _dt(row.next_due), row.last_run_id, _dt(row.last_slot),
                   _dt(row.buffered_at), row.fired, row.skipped_missed, row.skipped_overlap,
                   created, updated, row.input)

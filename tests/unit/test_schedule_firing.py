"""The pure half of schedules: slots across DST, what one firing does, the optional extra."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from perdure import InvalidConfiguration, Schedule
from perdure.flow.firing import BATCH, plan
from perdure.flow.slots import iterate, next_after, slot_run_id
from perdure.storage.port import ScheduleRow


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def year(cron: str, timezone: str = "Europe/Berlin") -> list[float]:
    found = []
    for slot in iterate(cron, timezone, ts("2029-12-31T23:00") - 1):
        if slot >= ts("2030-12-31T23:00"):  # Berlin's 2030, in UTC
            return found
        found.append(slot)
    raise AssertionError("the iteration ended")


def test_a_daily_0230_fires_once_on_every_local_day_of_a_year_with_two_dst_changes() -> None:
    slots = year("30 2 * * *")
    assert len(slots) == 365
    assert ts("2030-03-31T01:00") in slots  # 02:30 does not exist: right after the change
    assert ts("2030-10-27T00:30") in slots  # 02:30 happens twice: the first
    assert ts("2030-10-27T01:30") not in slots
    assert all(b - a >= 23 * 3600 for a, b in itertools.pairwise(slots))


def test_hourly_is_every_real_hour() -> None:
    slots = year("0 * * * *")
    assert len(slots) == 8760
    assert all(b - a == 3600 for a, b in itertools.pairwise(slots))


def test_slots_only_move_forward_from_inside_a_repeated_hour() -> None:
    # cronsim, started inside the second 02:00-03:00 of the fall-back night, answers the
    # first 02:30 (a time before its start); the slots never go back.
    after = ts("2030-10-27T01:10")
    assert next_after("30 2 * * *", "Europe/Berlin", after) == ts("2030-10-28T01:30")


def test_a_slot_run_id_is_the_schedule_and_the_utc_time() -> None:
    assert slot_run_id("digest", ts("2030-03-31T01:00")) == "digest@2030-03-31T01:00:00Z"
    assert slot_run_id("x@y", ts("2030-03-31T01:00") + 5) == "x@y@2030-03-31T01:00:05Z"


def row(**changes: Any) -> ScheduleRow:
    base = ScheduleRow("s", "wf", "1", "{}", "0 * * * *", "UTC", "skip", 3600.0, False,
                       ts("2030-06-01T10:00"), None, None, None, 0, 0, 0, 7,
                       ts("2030-06-01T00:00"), ts("2030-06-01T00:00"))
    return dataclasses.replace(base, **changes)


def test_nothing_due_is_no_firing() -> None:
    assert plan(row(), ts("2030-06-01T09:59:59")) is None
    assert plan(row(next_due=None), ts("2030-06-01T12:00")) is None


def test_a_due_slot_fires_under_its_own_id() -> None:
    firing = plan(row(), ts("2030-06-01T10:00:02"))
    assert firing is not None
    assert [r.id for r in firing.runs] == ["s@2030-06-01T10:00:00Z"]
    assert firing.firing.next_due == ts("2030-06-01T11:00")
    assert (firing.firing.last_run_id, firing.firing.fired) == ("s@2030-06-01T10:00:00Z", 1)


def test_a_long_backlog_is_counted_in_batches_and_the_window_fires() -> None:
    # A per-second schedule missed for two hours, with a 10 s window.
    now = ts("2030-06-01T12:00:00.5")
    current = row(cron="* * * * * *", overlap="allow", catchup=10.0)
    missed = fired = rounds = 0
    while (firing := plan(current, now)) is not None:
        rounds += 1
        missed += firing.firing.skipped_missed
        fired += firing.firing.fired
        assert firing.firing.skipped_missed + firing.firing.fired <= BATCH
        current = dataclasses.replace(current, next_due=firing.firing.next_due)
    assert (missed, fired) == (7191, 10)  # 10:00:00 .. 11:59:50 missed; 11:59:51 .. 12:00:00
    assert rounds == 8
    assert current.next_due == ts("2030-06-01T12:00:01")


def test_a_buffered_slot_fires_first_once_the_previous_run_ended() -> None:
    waiting = row(overlap="buffer_one", buffered_at=ts("2030-06-01T10:00"),
                  next_due=ts("2030-06-01T11:00"), last_run_id="s@2030-06-01T09:00:00Z")
    assert plan(dataclasses.replace(waiting, last_run_status="running"),
                ts("2030-06-01T10:30")) is None
    firing = plan(dataclasses.replace(waiting, last_run_status="completed"),
                  ts("2030-06-01T10:30"))
    assert firing is not None
    assert [r.id for r in firing.runs] == ["s@2030-06-01T10:00:00Z"]
    assert (firing.firing.buffered_at, firing.firing.next_due) == (None, ts("2030-06-01T11:00"))


def test_cancel_other_starts_the_newest_slot_and_cancels_the_previous_run() -> None:
    going = row(overlap="cancel_other", last_run_id="old", last_run_status="waiting",
                catchup=86400.0)
    firing = plan(going, ts("2030-06-01T12:30"))  # 10:00, 11:00 and 12:00 are due
    assert firing is not None
    assert [r.id for r in firing.runs] == ["s@2030-06-01T12:00:00Z"]
    assert (firing.cancel, firing.firing.skipped_overlap) == (("old",), 2)


def test_a_previous_run_that_is_gone_does_not_hold_a_slot() -> None:
    firing = plan(row(last_run_id="deleted", last_run_status=None), ts("2030-06-01T10:00"))
    assert firing is not None and firing.firing.fired == 1


def test_without_the_extra_a_schedule_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cronsim", None)  # as if it were not installed
    with pytest.raises(InvalidConfiguration, match=r"perdure\[schedules\]"):
        Schedule("s", "wf", cron="0 * * * *")


def test_timezones_are_checked_before_the_expression() -> None:
    with pytest.raises(InvalidConfiguration, match="timezone"):
        Schedule("s", "wf", cron="bad", timezone="Nowhere/Land")
    assert Schedule("s", "wf", cron="0 * * * *", catchup=timedelta(minutes=5)).catchup == \
        timedelta(minutes=5)

"""The corrected clock: an offset to the database's clock, learned from round trips."""

from __future__ import annotations

import pytest

from perdure import SystemClock, VirtualClock
from perdure.clock import CorrectedClock, is_authoritative


def test_the_first_measurement_takes_the_round_trips_midpoint() -> None:
    clock = CorrectedClock(VirtualClock(1000.0))
    # Sent at 1000, answered at 1000.2: the database read 1030.1 somewhere in between.
    clock.observe(1000.0, 1030.1, 1000.2)
    assert clock.offset == pytest.approx(30.0)
    assert clock.time() == pytest.approx(1030.0)


def test_a_slow_round_trip_that_agrees_keeps_the_estimate() -> None:
    clock = CorrectedClock(VirtualClock(1000.0))
    clock.observe(1000.0, 1030.001, 1000.002)
    # A 4 s round trip (a stalled loop) is consistent with the offset: it must not move it
    # by up to 2 s.
    clock.observe(2000.0, 2033.0, 2004.0)
    assert clock.offset == pytest.approx(30.0)


def test_a_measurement_that_disagrees_moves_the_estimate() -> None:
    clock = CorrectedClock(VirtualClock(1000.0))
    clock.observe(1000.0, 1030.0, 1000.0)
    clock.observe(2000.0, 1970.05, 2000.1)  # the host's clock jumped 60 s ahead
    assert clock.offset == pytest.approx(-30.0)


def test_only_a_virtual_clock_is_authoritative() -> None:
    assert is_authoritative(VirtualClock())
    assert not is_authoritative(SystemClock())
    assert not is_authoritative(CorrectedClock(VirtualClock()))

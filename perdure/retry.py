"""Retry policies: how often and how far apart a failing step is tried again."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from perdure import validate
from perdure.errors import InvalidConfiguration

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with jitter.

    The n-th retry waits ``initial_delay * multiplier ** (n - 1)`` seconds, capped at
    ``max_delay``, then shortened by a random fraction of up to ``jitter`` so that many runs
    failing together do not retry in lock-step.
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        validate.count(self.max_attempts, "max_attempts", maximum=2**63 - 1)
        validate.seconds(self.initial_delay, "initial_delay", zero=True)
        validate.seconds(self.max_delay, "max_delay", zero=True)
        if validate.number(self.multiplier, "multiplier") < 1:
            raise InvalidConfiguration("the back-off multiplier must be >= 1")
        if not 0 <= validate.number(self.jitter, "jitter") <= 1:
            raise InvalidConfiguration("jitter must be between 0 and 1")

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` failures before the next attempt."""
        try:
            grown = self.initial_delay * self.multiplier ** (failed_attempts - 1)
        except OverflowError:  # a steep back-off after many attempts: far past the cap
            grown = math.inf
        base = min(self.max_delay, grown)
        return base * (1.0 - self.jitter * random.random())

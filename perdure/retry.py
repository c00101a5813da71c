"""Retry policies: how often and how far apart a failing step is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass

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
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidConfiguration(
                f"max_attempts must be an int >= 1, not {self.max_attempts!r}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise InvalidConfiguration("retry delays must not be negative")
        if self.multiplier < 1:
            raise InvalidConfiguration("the back-off multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise InvalidConfiguration("jitter must be between 0 and 1")

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` failures before the next attempt."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (failed_attempts - 1))
        return base * (1.0 - self.jitter * random.random())

"""Arithmetic shared by the adapters when a rate limit has no token: when to try again.

A rate keeps the log of its grants in a sliding window of ``per`` seconds; a new grant needs
fewer than ``count`` of them in the window. With ``used`` grants in the window (oldest first,
g[0] .. g[used-1]), the next token frees when g[used - count] leaves it. A run with ``ahead``
runs parked before it on the same limit waits for the token after theirs: g[used - count +
ahead] + per, and, past the end of the log, one more window share (per / count) for each
token beyond it. Spreading the waiters over the times their tokens free up keeps them from
all waking at once only for one of them to get the token.
"""

from __future__ import annotations

__all__ = ["KEEP", "rate_slot"]

#: grants are kept this long (or a window, if longer) before they are dropped: long enough for
#: an operator (or a test) to see the recent admissions, short enough that the log stays small
KEEP = 60.0


def rate_slot(used: int, count: int, ahead: int) -> tuple[int, int]:
    """Which grant of the window must leave before this waiter's token frees, as (index into
    the window's grants oldest first, clamped to the last one; how many window shares past
    that grant's expiry)."""
    k = max(0, used - count) + max(0, ahead)
    last = max(0, used - 1)
    if k <= last:
        return k, 0
    return last, k - last

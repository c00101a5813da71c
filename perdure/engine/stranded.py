"""Stranded runs: unfinished runs whose workflow version no live worker serves.

After a deploy that drops a version, its in-flight runs would wait for ever, silently. Every
worker records the (workflow, version) keys it serves in its registration (renewed with each
heartbeat); a worker is *live* while its heartbeat is recent (three leases). Workers log the
stranded runs when they start and periodically after, with what is served, and
``perdure runs list --stranded`` lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from perdure.storage.port import Storage

__all__ = ["LIVE_LEASES", "describe_served", "log_stranded", "split_key"]

log = logging.getLogger("perdure")

#: a worker whose last heartbeat is older than this many leases is not counted as live
LIVE_LEASES = 3


def split_key(key: str) -> tuple[str, str]:
    """(workflow, version) of a workflow key (see ``storage.port.wf_key``)."""
    name, _, version = key.partition("\x1f")
    return name, version


def describe_served(keys: Iterable[str]) -> str:
    """``"flow (1, 2), other (1)"``, or ``"nothing"``."""
    served: dict[str, list[str]] = {}
    for key in keys:
        name, version = split_key(key)
        served.setdefault(name, []).append(version)
    return ", ".join(f"{n} ({', '.join(sorted(v))})" for n, v in sorted(served.items())) \
        or "nothing"


async def log_stranded(store: Storage, *, now: float, lease: float) -> int:
    """Log a warning naming the stranded runs by workflow and version, with what the live
    workers serve; returns how many runs are stranded."""
    live_after = now - LIVE_LEASES * lease
    summary = await store.stranded_summary(live_after=live_after)
    if not summary:
        return 0
    served = await store.served_keys(live_after=live_after)
    total = sum(n for _, _, n in summary)
    what = "; ".join(f"{n} of workflow {wf!r} version {v!r}" for wf, v, n in summary)
    log.warning("%d stranded run(s): no live worker serves %s. Live workers serve: %s. Deploy "
                "a worker with those versions (perdure runs list --stranded).", total, what,
                describe_served(served))
    return total

"""The engine's options that need more than one check: payload sizes and stores, the queues
and limits it knows, a start's deadline."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from perdure import validate
from perdure.codec.envelope import PayloadCodec
from perdure.codec.limits import DEFAULT_OFFLOAD_ABOVE, positive_size
from perdure.errors import InvalidConfiguration
from perdure.flow.definitions import Limit, Queue
from perdure.flow.registry import FlowRegistry
from perdure.storage.blobs import BlobStore
from perdure.workflow.registry import Registry

__all__ = ["deadline_of", "flow_registry", "payload_options"]


def payload_options(max_payload: object, codec: object, blobs: object,
                     offload_above: object) -> dict[str, int]:
    """Check the payload options; return the sizes for :class:`Payloads`."""
    limit = positive_size("max_payload", max_payload)
    if codec is not None and not isinstance(codec, PayloadCodec):
        raise InvalidConfiguration(
            f"codec must be a payload codec (perdure.Encrypted(...), perdure.Compressed() or "
            f"an object with encode and decode), not {codec!r}")
    if blobs is not None and blobs != "database" and not isinstance(blobs, BlobStore):
        raise InvalidConfiguration(
            f"blobs must be \"database\", a blob store (perdure.DirectoryBlobs(path), or an "
            f"object with put, get, delete and exists) or None, not {blobs!r}")
    if offload_above is None:
        offload = DEFAULT_OFFLOAD_ABOVE
    else:
        offload = positive_size("offload_above", offload_above)
        if blobs is None:
            raise InvalidConfiguration("offload_above needs a blob store to offload to: pass "
                                       "Engine(blobs=...) as well")
    if blobs is not None and offload >= limit:
        raise InvalidConfiguration(
            f"offload_above ({offload:,}) must be below max_payload ({limit:,}), or nothing "
            "would ever be offloaded: lower offload_above or raise max_payload")
    return {"max_payload": limit, "offload_above": offload}



def flow_registry(queues: Iterable[Queue], limits: Iterable[Limit],
                   workflows: Registry) -> FlowRegistry:
    """The engine's queues and limits: those declared, plus its workflows' default queues (a
    queue named by a workflow must be declared)."""
    registry = FlowRegistry(queues, limits)
    for wf in workflows.all():
        if isinstance(wf.queue, Queue):
            registry.add_queue(wf.queue, f"workflow {wf.name!r}")
    for wf in workflows.all():
        if isinstance(wf.queue, str):
            registry.queue(wf.queue, f"workflow {wf.name!r}")
    return registry


def deadline_of(deadline: datetime | timedelta | None, now: float) -> float | None:
    """A start's ``deadline`` (an aware datetime, or a timedelta from ``now``) as a time."""
    if deadline is None:
        return None
    if isinstance(deadline, timedelta):
        return now + validate.seconds(deadline, "deadline", negative=True, timedeltas=True)
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None or deadline.utcoffset() is None:
            raise InvalidConfiguration("a deadline must be an aware datetime (with a tzinfo)")
        return deadline.timestamp()
    raise InvalidConfiguration(f"a deadline must be a datetime or a timedelta, not "
                               f"{type(deadline).__name__}")

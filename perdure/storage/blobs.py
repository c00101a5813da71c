"""The blob store port: where payloads above ``Engine(offload_above=...)`` live.

A blob is immutable bytes under a key, the SHA-256 of those bytes in hex, so writing the same
payload twice stores it once and a reader can check what it got. The journal holds the
reference (``~blob:...``, see :mod:`perdure.codec.envelope`), written only after the blob's
``put`` returned, so a committed reference always names a blob that was stored.

Adapters: :class:`~perdure.storage.directory.DirectoryBlobs` (files in a directory, e.g. on a
shared file system) and a table in the engine's own database on both backends
(``Engine(blobs="database")``, zero setup). Any object with these four methods will do (an S3
bucket, say): keys are 64 lower-case hex characters; the store must make ``put`` durable before
it returns, and raise :class:`~perdure.errors.StorageUnavailable` (not a driver's own
exception) when it cannot be reached.

Deleting: a blob may be deleted only when no row references it any more (its runs were pruned
by retention, which will come with the retention feature). A blob can also be left behind by a
put whose journal write never happened (a start with an existing id, a signal to a finished
run, a crash between the two) or whose entry a resumed failed run dropped; a sweep must look
for references in every payload column (runs, journal, signals) before deleting. The engine
itself never deletes a blob.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from perdure.errors import InvalidConfiguration

__all__ = ["BlobStore", "check_key"]

_KEY = re.compile(r"[0-9a-f]{64}")


@runtime_checkable
class BlobStore(Protocol):
    """Stores large payloads by content hash: ``Engine(blobs=..., offload_above=...)``."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (its SHA-256 in hex), durably; a no-op if present."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None if there is no such blob."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob under ``key`` (a no-op if there is none)."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""
        ...


def check_key(key: object) -> str:
    """``key`` if it is a blob key (64 lower-case hex characters), else InvalidConfiguration:
    adapters use it as a file name or a row key, so nothing else may pass."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidConfiguration(f"a blob key is a SHA-256 in lower-case hex, not {key!r}")
    return key

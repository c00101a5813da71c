"""Blobs as files in a directory: ``Engine(blobs=perdure.DirectoryBlobs("/mnt/shared/blobs"))``.

Every worker that drives the runs must see the same directory (a shared file system such as
NFS or EFS, or a local disk when all workers are on one host). Files are written to a
temporary name, fsynced and renamed into place (then the directory is fsynced), so a reader
never sees half a blob and a blob the journal references survives a power loss. File I/O runs
in a thread: a 20 MB blob does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from perdure.errors import InvalidConfiguration, StorageUnavailable
from perdure.storage.blobs import check_key

__all__ = ["DirectoryBlobs"]

T = TypeVar("T")


class DirectoryBlobs:
    """A blob store in a directory (created on first write), one file per blob under a
    two-character fan-out folder (``ab/abcdef...``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise InvalidConfiguration(f"DirectoryBlobs needs a directory path, not {path!r}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InvalidConfiguration(f"blob directory {str(self.path)!r} is not a directory")

    def __repr__(self) -> str:
        return f"DirectoryBlobs({str(self.path)!r})"

    def _file(self, key: str) -> Path:
        key = check_key(key)
        return self.path / key[:2] / key

    async def put(self, key: str, data: bytes) -> None:
        """Write the blob (atomically, durably) unless it is already there."""
        target = self._file(key)
        await self._io(self._put, target, data)

    @staticmethod
    def _put(target: Path, data: bytes) -> None:
        if target.exists():
            return  # same key, same bytes: content-addressed
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself is durable
        finally:
            os.close(fd)

    async def get(self, key: str) -> bytes | None:
        """The blob's bytes, or None."""
        target = self._file(key)
        return await self._io(self._get, target)

    @staticmethod
    def _get(target: Path) -> bytes | None:
        try:
            return target.read_bytes()
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        """Remove the blob's file (a no-op if it is gone)."""
        target = self._file(key)
        await self._io(lambda: target.unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        """Whether the blob's file exists."""
        target = self._file(key)
        return await self._io(target.is_file)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise StorageUnavailable(
                f"blob directory {str(self.path)!r}: {type(exc).__name__}: {exc}") from exc

"""Push between the processes that share a SQLite file: Unix datagram sockets.

SQLite has no ``NOTIFY``. Without push, a worker finds what another process committed (a run
started by a web server, a signal, a cancel request) only on its next ``PRAGMA data_version``
poll: every ``poll_interval`` (50 ms, so 26 ms on average). Here each worker binds a datagram
socket and records its address in the workers table (``wake_addr``); a process whose commit can
make work runnable sends one byte to every registered address right after the commit. The
byte carries nothing: the woken worker looks at the database exactly as on a poll tick, so a
lost datagram costs one poll interval and a spurious one a cheap check. The poll stays as the
safety net.

Sending never blocks nor fails: the socket is non-blocking, and the address of a dead worker
(``ECONNREFUSED``, or ``ENOENT`` for a removed file) or the full buffer of a stopped one
(``EAGAIN``) is skipped. Measured on the 2-core dev box: one ``sendto`` is a few µs, the wake
lands in the worker's event loop within a few hundred µs (``bench/push_latency.py``).

Addresses: on Linux, the abstract namespace (stored as ``@perdure-<random>``): no file to
clean up, gone with the process, even a SIGKILLed one. Elsewhere, a socket file in the temp
directory, removed when the worker stops (a killed worker's stale file only refuses). Where
Unix sockets are missing (Windows), nothing binds and the worker polls as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

__all__ = ["SqlitePush", "WakeReceiver", "send_wakes"]

log = logging.getLogger("perdure")

_ABSTRACT = sys.platform.startswith("linux")
#: a receiver drains at most this many datagrams per wake (many senders at once: one wake)
_DRAIN = 256


def _sockaddr(addr: str) -> str:
    """The socket address of a stored one (``@name``: Linux's abstract namespace)."""
    return "\0" + addr[1:] if addr.startswith("@") else addr


class WakeReceiver:
    """One worker's datagram socket: calls ``on_wake`` in the event loop when poked."""

    def __init__(self, on_wake: Callable[[], None]) -> None:
        self._on_wake = on_wake
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the address other processes send to, as stored in the workers table
        self.address: str | None = None

    def open(self) -> str | None:
        """Bind and start reading in the running loop; the address, or None when this
        platform has no Unix datagram sockets (the worker then relies on its poll)."""
        if self._sock is not None:
            return self.address
        if not hasattr(socket, "AF_UNIX"):
            return None
        name = f"perdure-{uuid.uuid4().hex}"
        address = f"@{name}" if _ABSTRACT else os.path.join(tempfile.gettempdir(),
                                                            f"{name}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(_sockaddr(address))
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._readable)
        except (OSError, NotImplementedError):
            sock.close()
            log.debug("no wake-up socket; the worker polls instead", exc_info=True)
            return None
        self._sock, self._loop, self.address = sock, loop, address
        return address

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_DRAIN):
            try:
                sock.recv(16)
            except OSError:  # drained (EAGAIN)
                break
        self._on_wake()

    def close(self) -> None:
        """Stop reading and unbind (remove the socket file, if any)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
        sock.close()
        if self.address is not None and not self.address.startswith("@"):
            with contextlib.suppress(OSError):
                os.unlink(self.address)
        self.address = None


def send_wakes(addresses: Iterable[str]) -> int:
    """Poke every address; skip those that cannot take it (dead, stopped, missing). Returns
    how many were poked."""
    addresses = list(addresses)
    if not addresses or not hasattr(socket, "AF_UNIX"):
        return 0
    sent = 0
    # A socket per call (a few µs), not one kept for the process: nothing to close at exit.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for addr in addresses:
            try:
                sock.sendto(b"!", _sockaddr(addr))
                sent += 1
            except OSError:
                # ECONNREFUSED / ENOENT: a worker that died without unregistering (its row
                # goes when a peer reaps it); EAGAIN: one that is not reading (stopped): its
                # poll or a later wake finds the change.
                continue
    return sent


class SqlitePush:
    """The adapter's half for push: binds the worker's socket, keeps its address in the
    workers table, and pokes the other workers after a commit that can make work runnable
    (a mixin of :class:`~perdure.storage.sqlite.adapter.SqliteStorage`)."""

    if TYPE_CHECKING:
        def _read(self, name: str, params: dict[str, Any], *, many: bool = True
                  ) -> asyncio.Future[Any]: ...

    _receiver: WakeReceiver | None = None
    _waker: Callable[[], None] | None = None

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process pokes this worker's socket (after it
        committed something that may concern it)."""
        self._waker = wake

    @property
    def wake_address(self) -> str | None:
        """This worker's socket address (None: no worker here, or no Unix sockets)."""
        return None if self._receiver is None else self._receiver.address

    def _open_wake(self) -> str | None:
        """Bind this process's worker socket (once); its address for the workers table."""
        if self._receiver is None:
            self._receiver = WakeReceiver(self._on_wake)
        return self._receiver.open()

    def _on_wake(self) -> None:
        if self._waker is not None:
            self._waker()

    def _close_wake(self) -> None:
        if self._receiver is not None:
            self._receiver.close()

    async def _push(self) -> None:
        """Poke the workers of the other processes (call after the commit). Never raises: the
        write it follows has committed, and their poll finds it anyway."""
        try:
            rows = await self._read("wake_addresses", {})
        except Exception:
            log.debug("could not read the workers' wake-up addresses", exc_info=True)
            return
        mine = self.wake_address
        send_wakes(r[0] for r in rows if r[0] != mine)

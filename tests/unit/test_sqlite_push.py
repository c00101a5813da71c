"""The SQLite adapter's wake-up sockets: a poke reaches the receiver's loop; an address nobody
reads (dead, never bound, not reading) is skipped at once, without an error."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from pathlib import Path

from perdure.storage.sqlite.push import WakeReceiver, send_wakes


async def test_a_poke_wakes_the_receiver_in_its_event_loop() -> None:
    woke = asyncio.Event()
    receiver = WakeReceiver(woke.set)
    address = receiver.open()
    assert address is not None
    try:
        assert send_wakes([address]) == 1
        await asyncio.wait_for(woke.wait(), 5)
    finally:
        receiver.close()
    assert send_wakes([address]) == 0  # closed: refused, not raised


def test_addresses_nobody_reads_are_skipped_at_once(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.sock")
    closed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    closed.bind(gone)
    closed.close()
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read: fills up
    deaf.bind(str(tmp_path / "deaf.sock"))
    try:
        addresses = [f"@perdure-{uuid.uuid4().hex}", gone, str(tmp_path / "missing.sock"),
                     str(tmp_path / "deaf.sock")]
        t0 = time.monotonic()
        sent = sum(send_wakes(addresses) for _ in range(1000))
        assert time.monotonic() - t0 < 5
        assert 0 < sent < 1000  # only the deaf one took some, until its queue was full
    finally:
        deaf.close()
        os.unlink(tmp_path / "deaf.sock")

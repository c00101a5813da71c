"""SQLite under real storage trouble: a full disk, a file system gone read-only, a lock held by a
frozen process. None of it fails a run; none of it reaches the user as a raw ``sqlite3`` error.

The disk is a small tmpfs mounted for the test (we run as root; elsewhere these tests skip).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import Engine, InvalidConfiguration, StorageUnavailable, step, workflow
from perdure.storage.port import NewRun
from perdure.storage.sqlite.adapter import SqliteStorage

RUNS, STEPS = 20, 5
executed: list[str] = []
compensated: list[str] = []
disk: dict[str, Path] = {}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: small enough to fill in a moment."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Fill the file system to the last block; returns the filler file."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def undo(i: int) -> None:
    compensated.append(str(i))


@step(compensate=undo)
async def work(i: int) -> int:
    """The side effect (counted), then: the step of one run fills the disk, so that its
    journal write — and every other write, for a while — finds no space."""
    key = perdure.step_key()
    executed.append(key)
    if key == "r07:2" and "filler" not in disk:  # once: not when the step runs again
        disk["filler"] = fill(disk["mount"])
    return i


@workflow
async def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await work(i)
    return total


class Logged(logging.Handler):
    """Sets ``event`` on the first warning (or worse) the engine logs that contains ``text``."""

    def __init__(self, text: str = "") -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.event = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.text in self.messages[-1]:
            self.event.set()


async def _fill_then_free(mount: Path, *, until: str, lease: float) -> list[Any]:
    """Run RUNS chains; one step fills the disk; free it once the engine logged ``until``;
    return each run's journal once all completed."""
    executed.clear()
    compensated.clear()
    disk.clear()
    disk["mount"] = mount
    logged = Logged(until)
    logging.getLogger("perdure").addHandler(logged)
    try:
        async with Engine(f"sqlite:///{mount / 'perdure.db'}", workflows=[chain], lease=lease,
                          shutdown_grace=0.5) as engine:
            handles = [await engine.start(chain, STEPS, id=f"r{i:02}") for i in range(RUNS)]
            await asyncio.wait_for(logged.event.wait(), 30)  # the disk is full, and noticed
            assert "filler" in disk, logged.messages
            disk["filler"].unlink()  # the space comes back
            results = await asyncio.wait_for(
                asyncio.gather(*(h.result() for h in handles)), 30)
            assert results == [sum(range(STEPS))] * RUNS
            return [await h.journal() for h in handles]
    finally:
        logging.getLogger("perdure").removeHandler(logged)


async def test_a_full_disk_for_a_moment_fails_no_run(small_disk: Path) -> None:
    journals = await _fill_then_free(small_disk, until="", lease=10)
    for journal in journals:
        assert [(e.seq, e.kind, e.status, e.attempts) for e in journal] == [
            (s, "step", "completed", 1) for s in range(STEPS)]
    assert compensated == []
    # The writes were retried, not the steps: every side effect happened once.
    assert sorted(executed) == sorted(f"r{i:02}:{s}" for i in range(RUNS) for s in range(STEPS))


async def test_a_disk_full_for_longer_than_the_lease_lets_runs_go_and_they_come_back(
        small_disk: Path) -> None:
    journals = await _fill_then_free(small_disk, until="letting the run go", lease=1.0)
    for journal in journals:
        assert [(e.seq, e.kind, e.status) for e in journal] == [
            (s, "step", "completed") for s in range(STEPS)]
    assert compensated == []
    # A step whose journal write was given up ran again when its run was claimed again (steps
    # are at-least-once); every step ran.
    assert set(executed) == {f"r{i:02}:{s}" for i in range(RUNS) for s in range(STEPS)}


async def test_a_read_only_file_system_is_storage_unavailable_until_it_is_writable(
        small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'perdure.db'}"
    async with Engine(url, workflows=[chain], worker=False) as engine:
        await engine.start(chain, 1, id="before")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await Engine(url, workflows=[chain], worker=False).open()
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    async with Engine(url, workflows=[chain], worker=False) as engine:
        assert (await engine.status("before")).id == "before"


@pytest.fixture
def frozen_lock_holder(tmp_path: Path) -> Iterator[Path]:
    """A process that takes the database's write lock and then freezes (SIGSTOP)."""
    path = tmp_path / "locked.db"
    code = ("import os, signal, sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('PRAGMA journal_mode = WAL')\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGSTOP)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
        yield path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_a_lock_held_by_a_frozen_process_is_storage_unavailable(
        frozen_lock_holder: Path) -> None:
    store = SqliteStorage(str(frozen_lock_holder), busy_timeout=0.2)
    with pytest.raises(StorageUnavailable) as caught:
        await store.open()  # migrating needs the write lock
    assert "locked" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


async def test_a_lock_taken_after_opening_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    store = SqliteStorage(str(path), busy_timeout=0.2)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable) as caught:
            await store.create_run(NewRun("x", "wf", "1", "[]", 0.0))
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        other.execute("ROLLBACK")
        assert await store.create_run(NewRun("x", "wf", "1", "[]", 0.0))
    finally:
        other.close()
        await store.close()


async def test_a_value_sqlite_cannot_store_is_a_typed_error(tmp_path: Path) -> None:
    store = SqliteStorage(str(tmp_path / "values.db"))
    await store.open()
    try:
        with pytest.raises(InvalidConfiguration) as caught:
            await store.create_run(NewRun("bad\udc80id", "wf", "1", "[]", 0.0))
        assert isinstance(caught.value.__cause__, UnicodeEncodeError)
        assert await store.get_run("bad\udc80id".encode(errors="replace").decode()) is None
    finally:
        await store.close()


def test_the_translation_keeps_perdure_errors_and_bugs_as_they_are() -> None:
    from perdure.errors import LeaseLost
    from perdure.storage.sqlite.errors import storage_error

    lost = LeaseLost("gone")
    assert storage_error(lost, "x.db") is lost
    bug = KeyError("ours")
    assert storage_error(bug, "x.db") is bug
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert isinstance(storage_error(full, "x.db"), StorageUnavailable)
    missing = sqlite3.OperationalError("no such table: perdure_runs")
    missing.sqlite_errorcode = 1  # type: ignore[attr-defined]
    typed = storage_error(missing, "x.db")
    assert isinstance(typed, InvalidConfiguration) and typed.__cause__ is missing

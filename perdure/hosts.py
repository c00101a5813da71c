"""Telling whether a process on this host is alive, without waiting for its lease to lapse."""

from __future__ import annotations

import os
import socket

__all__ = ["hostname", "pid_alive", "pid_start"]


def hostname() -> str:
    """This host's name, as workers record it."""
    return socket.gethostname()


def pid_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown.

    Stored beside the pid so that a recycled pid is not mistaken for the worker that died.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None) -> bool:
    """Whether the process that registered as (pid, start) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc: trust the signal check
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):  # a zombie has exited; only its parent hasn't reaped it
        return False
    return start is None or (len(fields) > 19 and fields[19] == start)

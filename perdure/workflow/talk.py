"""What events, streams, requests and callbacks share: name checks and per-run state.

The state lives on the run's context (``RunContext.talk``) and is rebuilt by replay, since it
is changed at call time by replayed and new operations alike: a stream's next position, which
streams are closed, which requests were answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perdure.errors import InvalidConfiguration

__all__ = ["MAX_NAME", "StreamState", "TalkState", "check_name"]

#: the longest event key, stream or request name (and request id) accepted
MAX_NAME = 255


def check_name(what: str, name: object) -> str:
    """``name`` if it is a usable key or name, else a typed error naming ``what`` it is.

    NUL is refused because PostgreSQL text cannot hold it: the same name must work on every
    backend, and the error must come at the call, not from a driver deep in a write.
    """
    if not isinstance(name, str):
        raise InvalidConfiguration(f"{what} must be a string, not {type(name).__name__}")
    if not name or len(name) > MAX_NAME:
        raise InvalidConfiguration(f"{what} must be 1 to {MAX_NAME} characters long, "
                                   f"not {len(name)}")
    if "\x00" in name:
        raise InvalidConfiguration(f"{what} must not contain NUL characters: {name!r}")
    return name


@dataclass(slots=True)
class StreamState:
    """One stream of a run, as the workflow's code has reached it so far."""

    position: int = 0  #: the position of the next write (or of the end marker)
    closed: bool = False


@dataclass(slots=True)
class TalkState:
    """The talk operations' memory for one execution of a run."""

    streams: dict[str, StreamState] = field(default_factory=dict)
    replied: set[str] = field(default_factory=set)  #: ids of requests answered

    def stream(self, name: str) -> StreamState:
        """The state of stream ``name`` (created empty on first use)."""
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = StreamState()
        return state

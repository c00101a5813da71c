"""Lifecycle logs: one structured line per run event, and the text and JSON formats.

Loggers (children of ``perdure``, so configuring ``perdure`` configures them all):

* ``perdure.runs``: one line per run event, at INFO (``blocked``, ``lost`` and
  ``abandoned``: WARNING).
* ``perdure.worker``: claims, leases, dead peers, storage errors of the worker's loops.
* ``perdure.engine``: start-up (waiting for the database, migrations), the clock offset.
* ``perdure.storage``: the database connection (PostgreSQL reconnects, batches that failed).

A run event line carries its fields twice: in the message, as ``key=value`` pairs (logfmt, so
a plain text log stays greppable), and as the record's ``perdure`` attribute, which
:class:`JsonFormatter` writes as top-level JSON keys.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["RUNS", "JsonFormatter", "TEXT_FORMAT", "configure", "run_event", "utc"]

#: the logger of the run events
RUNS = logging.getLogger("perdure.runs")

#: the line format of ``--log-format text``
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Record attributes every LogRecord has: anything else was passed in ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


def utc(ts: float | None) -> str | None:
    """Unix seconds as an ISO 8601 UTC time with milliseconds (``...Z``), for a log field."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def run_event(event: str, fields: dict[str, Any], *, level: int = logging.INFO) -> None:
    """Log run event ``event`` (``claimed``, ``parked`` ...) with ``fields`` (None dropped)."""
    if not RUNS.isEnabledFor(level):
        return  # the common case in a library without logging configured: no formatting
    data = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    RUNS.log(level, "%s %s", event, _Logfmt(fields), extra={"perdure": data})


class _Logfmt:
    """``key=value`` pairs, formatted only when a handler prints the record."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(f"{k}={_value(v)}" for k, v in self.fields.items() if v is not None)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)  # quoted and escaped, one line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC), ``level``, ``logger``, ``message``, the
    fields of a run event (``event``, ``run_id``, ``workflow``, ``version``, ``seq``,
    ``worker`` ...) or any other ``extra`` given to the log call, and ``exception`` (the
    traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": utc(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "perdure", None)
        if isinstance(fields, dict):
            # A run event: the message is the event's name; the pairs are the fields.
            data["message"] = fields.get("event", record.getMessage())
            data.update(fields)
        else:
            data["message"] = record.getMessage()
            for key, value in record.__dict__.items():
                if key not in _STANDARD and not key.startswith("_"):
                    data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))


def configure(level: str | int, fmt: str = "text") -> None:
    """Send Perdure's (and the application's) logs to stderr at ``level``, as ``text`` lines
    or ``json`` objects: what ``perdure worker`` does with ``PERDURE_LOG`` and
    ``--log-format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])

"""What every ``perdure`` command shares: the database options, argument types, and the error a
command raises for a mistake on its command line."""

from __future__ import annotations

import argparse
import os

from perdure import validate
from perdure.errors import InvalidConfiguration

__all__ = ["DEFAULT_DB", "DEFAULT_PREFIX", "CommandError", "add_database_options",
           "database_url", "port", "positive_int", "seconds"]

DEFAULT_DB = "sqlite:///perdure.db"
DEFAULT_PREFIX = "perdure_"


class CommandError(Exception):
    """A mistake on the command line that argparse cannot see (a worker target that does not
    import, or names nothing to serve): reported in one line, exit status 2."""


def add_database_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--db`` and ``--prefix``. The top-level parser holds the defaults; each subcommand
    accepts them too (``suppress``: unset there, so it never overwrites a value given before
    the subcommand)."""
    parser.add_argument(
        "--db", metavar="URL", default=argparse.SUPPRESS if suppress else None,
        help=f"database URL (default: $PERDURE_DATABASE_URL, else {DEFAULT_DB})")
    parser.add_argument(
        "--prefix", metavar="PREFIX", default=argparse.SUPPRESS if suppress else DEFAULT_PREFIX,
        help=f"table prefix (default: {DEFAULT_PREFIX})")


def database_url(args: argparse.Namespace) -> str:
    """``--db``, else ``$PERDURE_DATABASE_URL``, else the default SQLite file."""
    return str(args.db or os.environ.get("PERDURE_DATABASE_URL") or DEFAULT_DB)


def positive_int(text: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        return validate.count(int(text), "the value")
    except (ValueError, InvalidConfiguration):
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None


def port(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (0: the system picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0-65535), not {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds."""
    try:
        return validate.seconds(float(text), "the value", zero=True)
    except (ValueError, InvalidConfiguration):
        raise argparse.ArgumentTypeError(
            f"expected a finite number of seconds >= 0, not {text!r}") from None

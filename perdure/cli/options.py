"""Options every ``perdure`` command shares: which database, which table prefix."""

from __future__ import annotations

import argparse
import os

__all__ = ["DEFAULT_DB", "database_url"]

DEFAULT_DB = "sqlite:///perdure.db"


def database_url(args: argparse.Namespace) -> str:
    """``--db``, else ``$PERDURE_DATABASE_URL``, else the default SQLite file."""
    return str(args.db or os.environ.get("PERDURE_DATABASE_URL") or DEFAULT_DB)

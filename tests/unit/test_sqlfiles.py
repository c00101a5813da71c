"""The adapters' SQL files: every backend loads the same named queries from its files."""

from __future__ import annotations

import pytest

from perdure.storage.sqlfiles import queries


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_queries_come_from_queries_sql_and_the_aggregate_files(backend: str) -> None:
    found = queries(backend, "perdure_")
    assert "finish_run" in found  # queries.sql
    assert "read_stream" in found and "request_state" in found  # talk.sql
    assert all("{p}" not in sql for sql in found.values())
    assert all("perdure_runs" in found[n] for n in ("get_run", "read_stream" if backend ==
                                                     "postgres" else "request_state"))

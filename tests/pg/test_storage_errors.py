"""PostgreSQL driver errors reach the user typed, with the driver's exception as ``__cause__``:
what the caller must change is ``InvalidConfiguration``, what waiting may cure is
``StorageUnavailable``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from perdure.errors import InvalidConfiguration, LeaseLost, StorageUnavailable
from perdure.storage.port import NewRun, RunQuery
from perdure.storage.postgres.adapter import PostgresStorage
from perdure.storage.postgres.errors import storage_error
from tests.pg.conftest import Database

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


@pytest.fixture
async def store(db: Database) -> AsyncIterator[PostgresStorage]:
    s = PostgresStorage(db.url, reconnect_timeout=2)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_values_postgresql_rejects_are_invalid_configuration(
        store: PostgresStorage) -> None:
    await store.create_run(NewRun("r", "wf", "1", "[]", time.time()))
    cases: list[tuple[Any, type[BaseException]]] = [
        (store.list_runs(RunQuery(limit=-1)),
         asyncpg.InvalidRowCountInLimitClauseError),
        (store.send_signal("r", "nul\x00name", "null", None, time.time()),
         asyncpg.CharacterNotInRepertoireError),
        (store.create_run(NewRun("lone\udc80surrogate", "wf", "1", "[]", time.time())),
         asyncpg.DataError),
    ]
    for call, driver_error in cases:
        with pytest.raises(InvalidConfiguration) as caught:
            await call
        assert isinstance(caught.value.__cause__, driver_error), caught.value.__cause__
    # Nothing was harmed: the store goes on.
    assert [r.id for r in await store.list_runs(RunQuery(limit=10))] == ["r"]


async def test_a_lock_timeout_is_storage_unavailable(db: Database, raw: Any) -> None:
    # (Unknown URL options are server settings: every connection waits 100 ms for a lock.)
    store = PostgresStorage(db.url + "?lock_timeout=100ms")
    await store.open()
    try:
        await store.create_run(NewRun("locked", "wf", "1", "[]", time.time()))
        tx = raw.transaction()
        await tx.start()
        await raw.execute("LOCK TABLE perdure_runs IN ACCESS EXCLUSIVE MODE")
        try:
            with pytest.raises(StorageUnavailable) as caught:
                await store.get_run("locked")
            assert isinstance(caught.value.__cause__, asyncpg.LockNotAvailableError)
        finally:
            await tx.rollback()
        assert (await store.get_run("locked")) is not None
    finally:
        await store.close()


def test_the_translation_keeps_perdure_errors_and_bugs_as_they_are() -> None:
    lost = LeaseLost("gone")
    assert storage_error(lost, "db") is lost
    bug = KeyError("ours")
    assert storage_error(bug, "db") is bug
    full = asyncpg.DiskFullError("could not extend file")
    assert isinstance(storage_error(full, "db"), StorageUnavailable)
    standby = asyncpg.ReadOnlySQLTransactionError("read-only transaction")
    assert isinstance(storage_error(standby, "db"), StorageUnavailable)
    denied = asyncpg.InsufficientPrivilegeError("permission denied")
    typed = storage_error(denied, "db")
    assert isinstance(typed, InvalidConfiguration) and typed.__cause__ is denied

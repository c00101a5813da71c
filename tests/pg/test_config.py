"""Bad configuration gets a typed error, fast, without echoing the password."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perdure import Engine, InvalidConfiguration, PerdureError, StorageUnavailable
from perdure.storage.postgres.adapter import PostgresStorage
from tests.conftest import PgCluster
from tests.pg.conftest import Database
from tests.pgserver import PASSWORD_ROLE, PASSWORD_ROLE_PASSWORD

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(30)]

SECRET = "n0t-the-Secret"


async def _open_fails(url: str, kind: type[PerdureError] = InvalidConfiguration,
                      **options: Any) -> str:
    store = PostgresStorage(url, **options)
    started = time.monotonic()
    with pytest.raises(kind) as err:
        await store.open()
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert SECRET not in message and SECRET not in repr(err.value)
    assert err.value.__cause__ is None or SECRET not in str(err.value.__cause__)
    return message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_server() -> None:
    url = f"postgresql://someone:{SECRET}@127.0.0.1:{_free_port()}/db"
    # A server that is down may come back: transient (a worker waits for it), not a mistake.
    message = await _open_fails(url, StorageUnavailable)
    assert "cannot connect to PostgreSQL at postgresql://someone:***@127.0.0.1" in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def test_a_server_that_never_answers_times_out(silent_server: int) -> None:
    url = f"postgresql://someone:{SECRET}@127.0.0.1:{silent_server}/db?connect_timeout=1"
    message = await _open_fails(url, StorageUnavailable)
    assert "Timeout" in message


async def test_wrong_password(pg: PgCluster) -> None:
    url = pg.server.url("postgres", user=PASSWORD_ROLE, password=SECRET)
    message = await _open_fails(url)
    assert "password authentication failed" in message


async def test_unknown_database_and_unknown_server_setting(db: Database) -> None:
    assert "does not exist" in await _open_fails(db.cluster.url("no_such_db"))
    assert "no_such_setting" in await _open_fails(db.url + "?no_such_setting=1")


async def test_a_role_without_rights_gets_a_typed_error(db: Database) -> None:
    url = db.cluster.server.url(db.name, user=PASSWORD_ROLE, password=PASSWORD_ROLE_PASSWORD)
    message = await _open_fails(url)
    assert "permission denied" in message


async def test_right_password_on_a_database_the_role_owns(pg: PgCluster) -> None:
    pg.execute(f"CREATE DATABASE owned_by_role OWNER {PASSWORD_ROLE}", "postgres")
    try:
        url = pg.server.url("owned_by_role", user=PASSWORD_ROLE,
                            password=PASSWORD_ROLE_PASSWORD)
        for schema in (None, "perdure"):
            store = PostgresStorage(url, schema=schema)
            await store.open()
            assert PASSWORD_ROLE_PASSWORD not in repr(store)
            await store.close()
    finally:
        pg.drop("owned_by_role")


@pytest.mark.parametrize("prefix", ["", "Perdure_", "drop table;", "1x", "a" * 41, None])
def test_invalid_prefix(prefix: Any) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidConfiguration, match="prefix"):
        PostgresStorage(f"postgresql://u:{SECRET}@127.0.0.1/db", prefix=prefix)
    with pytest.raises(InvalidConfiguration, match="prefix"):
        Engine(f"postgresql://u:{SECRET}@127.0.0.1/db", table_prefix=prefix)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("schema", ["", "Public", "pg_catalog", "a b", 'x"; drop table t; --',
                                    "9lives", 42])
def test_invalid_schema(schema: Any) -> None:
    with pytest.raises(InvalidConfiguration, match="schema") as err:
        PostgresStorage(f"postgresql://u:{SECRET}@127.0.0.1/db", schema=schema)
    assert SECRET not in str(err.value)
    if isinstance(schema, str) and schema:
        with pytest.raises(InvalidConfiguration, match="schema"):
            Engine(f"postgresql://u:{SECRET}@127.0.0.1/db?schema={schema}")


@pytest.mark.parametrize("query", ["pool_size=0", "pool_size=abc", "pool_size=1.5",
                                   "connect_timeout=-1", "reconnect_timeout=nan",
                                   "reconnect_timeout=inf", "connect_timeout=soon"])
def test_invalid_options(query: str) -> None:
    name = query.split("=")[0]
    with pytest.raises(InvalidConfiguration, match=name) as err:
        PostgresStorage(f"postgresql://u:{SECRET}@127.0.0.1/db?{query}")
    assert SECRET not in str(err.value)


async def test_engine_open_reports_a_bad_url_with_the_password_hidden() -> None:
    engine = Engine(f"postgresql://u:{SECRET}@127.0.0.1:{_free_port()}/db",
                    workflows=[])
    assert SECRET not in repr(engine)
    with pytest.raises(StorageUnavailable) as err:  # no workflows to drive: it does not wait
        await engine.open()
    assert SECRET not in str(err.value)
    with contextlib.suppress(Exception):
        await engine.close()
    await asyncio.sleep(0)

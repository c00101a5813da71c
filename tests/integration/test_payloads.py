"""Payload hygiene on both backends: size limits, blob offload, encryption with key rotation.

The secrecy tests read the raw rows of every Perdure table (``raw_dump``), as an attacker with a
copy of the database would, and look for a known secret in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import perdure
from perdure import (
    BlobMissing,
    DecryptionError,
    DirectoryBlobs,
    Encrypted,
    Engine,
    InvalidConfiguration,
    NonRetryable,
    PayloadTooLarge,
    RunBlocked,
    SerializationError,
    StepFailed,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.cli.main import main
from perdure.testing import wait_for_status

K1, K2 = os.urandom(32), os.urandom(32)
SECRET = "s3cr3t-4111-1111-1111-1111"


async def raw_dump(url: str) -> bytes:
    """Every value of every Perdure table, as bytes."""
    values: list[Any] = []
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'perdure_%'")]
            assert "perdure_blobs" in tables
            for t in tables:
                values += [v for row in conn.execute(f"SELECT * FROM {t}") for v in row]
        finally:
            conn.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'perdure_%'")]
            assert "perdure_blobs" in tables
            for t in tables:
                values += [v for row in await conn.fetch(f"SELECT * FROM {t}") for v in row]
        finally:
            await conn.close()
    return b"\n".join(v if isinstance(v, bytes) else str(v).encode() for v in values)


@step
async def echo(data: str) -> str:
    return data


@step(max_attempts=2, retry=perdure.RetryPolicy(initial_delay=0.01))
async def leak(secret: str) -> None:
    raise ValueError(f"the card {secret} was declined")


@workflow
async def child_echo(secret: str) -> str:
    return await echo(secret)


@workflow
async def secretive(secret: str, big: str) -> str:
    mine = await echo(secret)
    big_back = await echo(big)
    signalled = await perdure.wait_for_signal("go")
    with contextlib.suppress(StepFailed):
        await leak(secret)
    child = await perdure.start_child(child_echo, secret, id="secretive-child")
    from_child = await child.result()
    perdure.uuid4()
    await perdure.set_event("state", f"event {secret}")
    async with perdure.stream("out") as out:
        await out.write(f"item {secret}")
    return f"{mine}|{len(big_back)}|{signalled}|{from_child}"


@workflow
async def fails(secret: str) -> None:
    raise ValueError(f"no luck with {secret}")


def big_value() -> str:
    # Hex of random bytes: half-compressible, so still large after zstd.
    return SECRET + os.urandom(100_000).hex()


async def _run_secretive(engine: Engine) -> None:
    h = await engine.start(secretive, SECRET, big_value(), id="s")
    await engine.signal("s", "go", f"signal {SECRET}")
    assert await h.result(timeout=30) == f"{SECRET}|{len(big_value())}|signal {SECRET}|{SECRET}"
    # Events and stream items are payloads too: stored through the codec, read back by it.
    assert await h.get_event("state", timeout=5) == f"event {SECRET}"
    assert [item async for item in h.read_stream("out")] == [f"item {SECRET}"]
    f = await engine.start(fails, SECRET, id="f")
    with pytest.raises(WorkflowFailed, match=SECRET):
        await f.result(timeout=10)


async def test_no_stored_row_holds_the_plaintext_of_a_secret(make_engine: Any,
                                                              db_url: str) -> None:
    codec = Encrypted(keys={"k1": K1}, current="k1", compress_above=1024)
    engine = await make_engine(secretive, child_echo, fails, codec=codec, blobs="database",
                               offload_above=64 * 1024)
    await _run_secretive(engine)
    dump = await raw_dump(db_url)
    assert SECRET.encode() not in dump
    assert b"~blob:zstd+aesgcm=k1:" in dump and b"~inline:aesgcm=k1:" in dump
    # Metadata stays readable for listings: ids, workflow names, statuses, step names.
    for clear in (b"secretive", b"child_echo", b"completed", b"failed", b"leak"):
        assert clear in dump
    # ... and everything reads back through the engine.
    journal = await engine.journal("s")
    assert sum(SECRET in (e.output or "") for e in journal) >= 4
    [failed] = [e for e in journal if e.kind == "step" and e.status == "failed"]
    assert failed.error_info is not None and SECRET in failed.error_info.message
    info = await engine.status("f")
    assert info.error is not None and SECRET in info.error.message


async def test_without_a_codec_the_secret_is_in_the_rows(make_engine: Any,
                                                         db_url: str) -> None:
    # The control for the test above: the dump does show a plaintext secret.
    engine = await make_engine(secretive, child_echo, fails, blobs="database",
                               offload_above=64 * 1024)
    await _run_secretive(engine)
    dump = await raw_dump(db_url)
    assert dump.count(SECRET.encode()) >= 8
    assert b"~blob::" in dump  # offloaded as plain JSON


@workflow
async def two_parts(first: str) -> str:
    a = await echo(first)
    b = await perdure.wait_for_signal("next")
    return f"{a}+{b}"


async def test_keys_rotate_and_a_missing_key_is_named(make_engine: Any, db_url: str) -> None:
    old = Encrypted(keys={"k1": K1}, current="k1")
    new = Encrypted(keys={"k2": K2, "k1": K1}, current="k2")
    only_new = Encrypted(keys={"k2": K2}, current="k2")
    first = await make_engine(two_parts, codec=old, park_after=0.05)
    h = await first.start(two_parts, SECRET, id="rot")
    await wait_for_status(h, "waiting")
    await first.close()
    second = await make_engine(two_parts, codec=new)
    await second.signal("rot", "next", "later")
    assert await second.handle("rot").result(timeout=10) == f"{SECRET}+later"
    # History keeps its key; new values name the new one.
    raw = await second.store.load_journal("rot")
    assert raw[0].output is not None and raw[0].output.startswith("~inline:aesgcm=k1:")
    assert raw[1].output is not None and raw[1].output.startswith("~inline:aesgcm=k2:")
    # A process without k1 lists and inspects without failing, and says what it lacks.
    viewer = await make_engine(codec=only_new, worker=False)
    journal = await viewer.journal("rot")
    assert journal[0].unreadable == "encrypted (key 'k1')" and journal[0].output is None
    assert journal[1].output == '"later"' and journal[1].unreadable is None
    assert await viewer.handle("rot").result(timeout=5) == f"{SECRET}+later"
    stale = await make_engine(codec=old, worker=False)
    with pytest.raises(DecryptionError, match="'k2'") as err:
        await stale.handle("rot").result(timeout=5)
    assert err.value.key_id == "k2"


async def test_a_worker_without_the_key_blocks_the_run_never_fails_it(make_engine: Any) -> None:
    writer = Encrypted(keys={"k1": K1}, current="k1")
    client = await make_engine(two_parts, codec=writer, worker=False)
    h = await client.start(two_parts, SECRET, id="needs-k1")
    wrong = await make_engine(two_parts, codec=Encrypted(keys={"k2": K2}, current="k2"))
    info = await wait_for_status(h, "blocked")
    assert info.blocked_reason is not None and "'k1'" in info.blocked_reason
    assert SECRET not in info.blocked_reason
    await wrong.close()
    right = await make_engine(two_parts, codec=Encrypted(keys={"k2": K2, "k1": K1},
                                                         current="k2"))
    await right.resume("needs-k1")
    await right.signal("needs-k1", "next", "x")
    assert await right.handle("needs-k1").result(timeout=10) == f"{SECRET}+x"


@workflow
async def stamped() -> float:
    at = perdure.now()
    await perdure.wait_for_signal("next")
    return at.timestamp()


async def test_journaled_values_are_encrypted_and_replayed(make_engine: Any) -> None:
    engine = await make_engine(stamped, codec=Encrypted(keys={"k1": K1}, current="k1"),
                               park_after=0.05)
    h = await engine.start(stamped, id="t")
    await wait_for_status(h, "waiting")  # parked: the signal's claim replays now()
    [raw] = await engine.store.load_journal("t")
    assert raw.kind == "now" and raw.output is not None
    assert raw.output.startswith("~inline:aesgcm=k1:")
    await engine.signal("t", "next", 1)
    stamp = await h.result(timeout=10)
    journal = await engine.journal("t")
    assert abs(float(journal[0].output or "nan") - stamp) < 1e-5  # datetime: microseconds


@pytest.mark.parametrize("kind", ["database", "directory"])
async def test_offloaded_payloads_round_trip_and_stay_out_of_the_journal(
        make_engine: Any, tmp_path: Path, kind: str) -> None:
    blobs: Any = "database" if kind == "database" else DirectoryBlobs(tmp_path / "blobs")
    engine = await make_engine(two_parts, blobs=blobs, offload_above=1024)
    big, big_signal = "a" * 1_100_000, "b" * 20_000
    h = await engine.start(two_parts, big, id="o")
    await engine.signal("o", "next", big_signal)
    assert await h.result(timeout=10) == f"{big}+{big_signal}"
    run = await engine.store.get_run("o")
    assert run is not None and run.input.startswith("~blob::") and len(run.input) < 120
    assert run.output is not None and run.output.startswith("~blob::")
    raw = await engine.store.load_journal("o")
    assert all(e.output is not None and e.output.startswith("~blob::") for e in raw)
    store = engine.payloads.blobs
    assert store is not None
    key = raw[1].output.split(":")[2]  # type: ignore[union-attr]
    assert await store.exists(key)
    assert (await store.get(key)) == f'"{big_signal}"'.encode()
    assert [e.output for e in await engine.journal("o")] == [f'"{big}"', f'"{big_signal}"']


@pytest.mark.parametrize("kind", ["database", "directory"])
async def test_a_missing_blob_blocks_the_run_until_it_is_restored(
        make_engine: Any, tmp_path: Path, kind: str) -> None:
    blobs: Any = "database" if kind == "database" else DirectoryBlobs(tmp_path / "blobs")
    client = await make_engine(two_parts, worker=False, blobs=blobs, offload_above=1024)
    h = await client.start(two_parts, "z" * 5000, id="m")
    row = await client.store.get_run("m")
    assert row is not None
    key = row.input.split(":")[2]
    store = client.payloads.blobs
    assert store is not None
    data = await store.get(key)
    assert data is not None
    await store.delete(key)
    assert not await store.exists(key)
    worker = await make_engine(two_parts, blobs=blobs, offload_above=1024)
    info = await wait_for_status(h, "blocked")
    assert info.blocked_reason is not None and key in info.blocked_reason
    assert "missing" in info.blocked_reason
    with pytest.raises(RunBlocked):
        await h.result(timeout=5)
    with pytest.raises(BlobMissing) as err:
        await client.payloads.load(row.input)
    assert err.value.key == key
    assert (await client.payloads.readable(row.input))[1] == (
        f"offloaded to blob {key[:12]}..., not available here")
    await store.put(key, data)
    await worker.resume("m")
    await worker.signal("m", "next", "back")
    assert await h.result(timeout=10) == "z" * 5000 + "+back"


@workflow
async def waits_for_go() -> str:
    got = await perdure.wait_for_signal("go")
    return str(got)


@step
async def huge_result() -> str:
    return "h" * 20_000


@workflow
async def catches_huge_step() -> str:
    try:
        await huge_result()
    except PayloadTooLarge as exc:
        return f"caught {type(exc).__name__}: {exc}"
    return "no error"


@workflow
async def returns_huge() -> str:
    return "r" * 20_000


@workflow
async def starts_huge_child() -> str:
    try:
        await perdure.start_child(child_echo, "c" * 20_000)
    except PayloadTooLarge as exc:
        return f"caught: {exc}"
    return "no error"


@step(max_attempts=1)
async def shouts() -> None:
    raise NonRetryable("START" + "!" * 5_000_000 + "END")


@workflow
async def fails_loudly() -> None:
    await shouts()


async def test_payloads_over_the_limit_are_refused_where_they_are_made(
        make_engine: Any) -> None:
    engine = await make_engine(child_echo, waits_for_go, catches_huge_step, returns_huge,
                               starts_huge_child, fails_loudly, max_payload=10_000)
    # A start: refused at the call, nothing written.
    with pytest.raises(PayloadTooLarge, match=r"argument 'secret' of child_echo is 19\.5 KiB "
                       r"\(20,013 bytes\), over the max_payload of 9\.8 KiB") as err:
        await engine.start(child_echo, "x" * 20_000, id="too-big")
    assert (err.value.size, err.value.limit) == (20_013, 10_000)
    assert await engine.list_runs() == []
    # A signal: refused, nothing buffered; the run gets the next one.
    h = await engine.start(waits_for_go, id="w")
    with pytest.raises(PayloadTooLarge, match=r"the payload of signal 'go' is 19\.5 KiB"):
        await engine.signal("w", "go", "y" * 20_000)
    await engine.signal("w", "go", "small")
    assert await h.result(timeout=10) == "small"
    # A step's result: the workflow's own error, at the step's call, journaled once.
    h = await engine.start(catches_huge_step, id="step")
    assert (await h.result(timeout=10)).startswith(
        "caught PayloadTooLarge: the result of huge_result is 19.5 KiB")
    [entry] = await engine.journal("step")
    assert entry.status == "failed" and entry.attempts == 1
    # The workflow's result: the run fails with it.
    h = await engine.start(returns_huge, id="result")
    with pytest.raises(WorkflowFailed, match=r"the result of returns_huge is 19\.5 KiB"):
        await h.result(timeout=10)
    # A child's arguments: raised in the parent at start_child, no child created.
    h = await engine.start(starts_huge_child, id="parent")
    assert "argument 'secret' of child_echo" in await h.result(timeout=10)
    assert await engine.list_runs(parent_id="parent") == []
    # Errors are bounded instead (head and tail kept), so a failure is always recorded.
    h = await engine.start(fails_loudly, id="loud")
    with pytest.raises(WorkflowFailed) as failed:
        await h.result(timeout=10)
    assert "characters cut" in failed.value.cause_message
    assert "START" in failed.value.cause_message and "END" in failed.value.cause_message
    [entry] = await engine.store.load_journal("loud")
    assert entry.error is not None and len(entry.error) < 60_000
    row = await engine.store.get_run("loud")
    assert row is not None and row.error is not None and len(row.error) < 60_000


class Reversing:
    """A user's payload codec that can be made to fail, as one calling out to a KMS might."""

    def __init__(self) -> None:
        self.fail_on: bytes | None = None
        self.decode_broken = False

    def encode(self, data: bytes) -> tuple[str, bytes]:
        if self.fail_on is not None and self.fail_on in data:
            raise RuntimeError("the key service is offline")
        return "rev", data[::-1]

    def decode(self, label: str, data: bytes) -> bytes:
        if self.decode_broken:
            raise RuntimeError("the key service is offline")
        assert label == "rev"
        return data[::-1]


@step
async def says_boom() -> str:
    return "boom"


@workflow
async def booms() -> str:
    return await says_boom()


async def test_a_failing_codec_is_a_typed_error_or_a_blocked_run(make_engine: Any) -> None:
    codec = Reversing()
    codec.fail_on = b"boom"
    engine = await make_engine(booms, child_echo, codec=codec)
    with pytest.raises(InvalidConfiguration, match="failed to encode: RuntimeError"):
        await engine.start(child_echo, "boom", id="never")
    assert await engine.list_runs() == []
    h = await engine.start(booms, id="b")
    info = await wait_for_status(h, "blocked")
    assert info.blocked_reason is not None and "the key service is offline" in \
        info.blocked_reason
    codec.fail_on = None
    await engine.resume("b")
    assert await h.result(timeout=10) == "boom"
    codec.decode_broken = True
    with pytest.raises(perdure.PayloadUnavailable, match="failed to decode"):
        await h.result(timeout=5)
    assert [e.unreadable is not None for e in await engine.journal("b")] == [True]


async def test_blob_store_adapters_keep_the_contract(make_engine: Any, tmp_path: Path) -> None:
    engine = await make_engine()
    import hashlib

    for store in (engine.store.blobs(), DirectoryBlobs(tmp_path / "b")):
        data = os.urandom(3000)
        key = hashlib.sha256(data).hexdigest()
        assert not await store.exists(key) and await store.get(key) is None
        await store.put(key, data)
        await store.put(key, data)  # idempotent
        assert await store.exists(key) and await store.get(key) == data
        await store.delete(key)
        await store.delete(key)
        assert not await store.exists(key)
        for bad in ("../etc/passwd", "ABC", "", 42):
            with pytest.raises(InvalidConfiguration, match="blob key"):
                await store.put(bad, data)  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "match"), [
    ({"max_payload": 0}, "max_payload must be a positive int"),
    ({"max_payload": -1}, "max_payload"),
    ({"max_payload": 1.5}, "max_payload"),
    ({"max_payload": True}, "max_payload"),
    ({"max_payload": "2MB"}, "max_payload"),
    ({"blobs": "database", "offload_above": 0}, "offload_above must be a positive int"),
    ({"blobs": "database", "offload_above": -5}, "offload_above"),
    ({"offload_above": 1024}, "offload_above needs a blob store"),
    ({"blobs": "database", "offload_above": 4 << 20}, "must be below max_payload"),
    ({"blobs": "s3"}, "blobs must be"),
    ({"blobs": 42}, "blobs must be"),
    ({"codec": "aes"}, "codec must be a payload codec"),
    ({"codec": object()}, "codec must be a payload codec"),
])
def test_bad_payload_options_are_typed_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidConfiguration, match=match):
        Engine("sqlite:///:memory:", **options)


def test_directory_blobs_needs_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidConfiguration, match="not a directory"):
        DirectoryBlobs(tmp_path / "file")
    with pytest.raises(InvalidConfiguration, match="directory path"):
        DirectoryBlobs(42)  # type: ignore[arg-type]


def test_the_cli_shows_encrypted_instead_of_crashing(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    codec = Encrypted(keys={"k1": K1}, current="k1")

    async def make_runs() -> None:
        async with Engine(url, workflows=[child_echo, fails], codec=codec) as engine:
            await (await engine.start(child_echo, SECRET, id="ok")).result(timeout=10)
            with pytest.raises(WorkflowFailed):
                await (await engine.start(fails, SECRET, id="bad")).result(timeout=10)

    asyncio.run(make_runs())
    capsys.readouterr()
    assert main(["runs", "list", "--db", url]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["runs", "show", "ok", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "encrypted (key 'k1')" in out and SECRET not in out
    assert main(["runs", "show", "bad", "--db", url]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^error\s+encrypted \(key 'k1'\)$", out, re.MULTILINE), out
    assert re.search(r"^arguments\s+encrypted \(key 'k1'\)$", out, re.MULTILINE), out
    assert SECRET not in out


def test_payload_too_large_is_a_serialization_error() -> None:
    assert issubclass(PayloadTooLarge, SerializationError)

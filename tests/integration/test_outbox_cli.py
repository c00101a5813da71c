"""``perdure outbox list|dlq|replay|purge|stats`` against a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import perdure
from perdure import Engine, OutboxEvent, RetryPolicy, workflow
from perdure.cli.main import main


@workflow
async def announce(names: list[str]) -> None:
    for name in names:
        await perdure.emit(name, {"name": name}, key="k")


async def _refuse(event: OutboxEvent) -> None:
    raise RuntimeError(f"receiver down for {event.name}")


async def _make_events(url: str) -> None:
    # Three dead letters (one attempt each, refused), then two events left pending.
    async with Engine(url, workflows=[announce], outbox=_refuse,
                      outbox_retry=RetryPolicy(max_attempts=1)) as engine:
        await (await engine.start(announce, ["a", "b", "c"], id="dead")).result(timeout=10)
        async with asyncio.timeout(15):
            while (await engine.outbox.stats()).dead < 3:
                await asyncio.sleep(0.02)
    async with Engine(url, workflows=[announce]) as engine:  # no sink: they stay pending
        await (await engine.start(announce, ["x", "y"], id="live")).result(timeout=10)


def test_outbox_commands(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(_make_events(url))
    capsys.readouterr()

    assert main(["outbox", "list", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "live:0" in out and "live:1" in out and "dead:0" not in out
    assert main(["outbox", "list", "--db", url, "--key", "other"]) == 0
    assert "live:0" not in capsys.readouterr().out

    assert main(["outbox", "dlq", "--db", url]) == 0
    out = capsys.readouterr().out
    assert all(f"dead:{i}" in out for i in range(3))
    assert "RuntimeError: receiver down for a" in out

    assert main(["outbox", "stats", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "pending   2 (0 retrying)" in out and "dead      3" in out

    # An operator must say which: no ids and no --all is refused, nothing changes.
    assert main(["outbox", "replay", "--db", url]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["outbox", "purge", "--db", url, "dead:0", "--all"]) == 2
    capsys.readouterr()

    assert main(["outbox", "replay", "--db", url, "dead:0"]) == 0
    assert "1 dead letter(s) moved" in capsys.readouterr().out
    assert main(["outbox", "purge", "--db", url, "--older-than", "3600"]) == 0
    assert "0 dead letter(s) deleted" in capsys.readouterr().out
    assert main(["outbox", "purge", "--db", url, "dead:1"]) == 0
    assert "1 dead letter(s) deleted" in capsys.readouterr().out
    assert main(["outbox", "replay", "--db", url, "--all"]) == 0
    assert "1 dead letter(s) moved" in capsys.readouterr().out

    assert main(["outbox", "list", "--db", url]) == 0
    out = capsys.readouterr().out
    # back at their old place in the key's order, ahead of the later events
    assert out.index("dead:0") < out.index("dead:2") < out.index("live:0")
    assert main(["outbox", "dlq", "--db", url]) == 0
    assert "dead:" not in capsys.readouterr().out
    assert main(["outbox", "list", "--db", url, "--limit", "0"]) == 2
    assert "limit" in capsys.readouterr().err

"""SIGKILL a worker whose runs' payloads are encrypted and offloaded to a blob directory: a new
worker process reads the blobs the dead one wrote and finishes the run as a crash-free run
would, and no row or blob holds the plaintext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, RunStatus
from tests.crash.app import WORKFLOWS
from tests.crash.app_payloads import options
from tests.crash.harness import Cluster, reference, settle_all

pytestmark = pytest.mark.crash

SECRET = "secret-tag-"


@pytest.fixture
def crash_app() -> tuple[str, str]:
    return "tests.crash.app_payloads", "ENGINE"


def _hung(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "hung" for e in events)


async def test_kill_mid_run_with_encrypted_offloaded_payloads(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    tag = SECRET + "t" * 40_000  # every step's result holds it: each is offloaded
    ref, _ = await reference(tmp_path / "ref", [("big", "pipeline", (tag,))])
    async with Engine(cluster.url, workflows=WORKFLOWS, worker=False,
                      **options(cluster.dir)) as client:  # type: ignore[arg-type]
        await client.start("pipeline", tag, id="big")
        a = cluster.start("a", hang=["s3@after"])
        await cluster.wait_events(_hung, what="hang in s3")
        a.kill()
        cluster.start("b")
        outcome = (await settle_all(client, ["big"]))["big"]
    assert outcome == ref["big"]
    assert outcome.status is RunStatus.COMPLETED
    blobs = [p for p in (cluster.dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) >= 6  # the input, five step results, the result
    assert not [p for p in blobs if p.name.endswith(".tmp")]
    wal = cluster.db.with_name(cluster.db.name + "-wal")
    for path in [cluster.db, *([wal] if wal.exists() else []), *blobs]:
        assert SECRET.encode() not in path.read_bytes(), path

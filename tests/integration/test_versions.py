"""Several versions of a workflow in one worker: new starts use the default, in-flight runs keep
theirs, and a name with the same version twice is refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import perdure
from perdure import Engine, InvalidConfiguration, RunStatus, UnknownWorkflowError, workflow
from perdure.testing import wait_for_status


@dataclasses.dataclass
class Quote:
    amount: int


@dataclasses.dataclass
class QuoteV2:
    amount: int
    currency: str


@workflow(name="pricing", version="1")
async def pricing_v1(n: int) -> Quote:
    await perdure.wait_for_signal("go")
    return Quote(n)


@workflow(name="pricing", version="2")
async def pricing_v2(n: int) -> QuoteV2:
    await perdure.wait_for_signal("go")
    return QuoteV2(n * 2, "EUR")


@workflow(name="pricing", version="10")
async def pricing_v10(n: int) -> str:
    return f"v10: {n}"


async def test_new_starts_use_the_newest_and_in_flight_runs_keep_their_version(
        make_engine: Any) -> None:
    old = await make_engine(pricing_v1, park_after=0.1)
    before = await old.start(pricing_v1, 5, id="before-deploy")
    await wait_for_status(before, "waiting")
    await old.close()

    engine = await make_engine(pricing_v1, pricing_v2)
    after = await engine.start("pricing", 5, id="after-deploy")  # by name: the newest
    assert (await after.status()).version == "2"
    for run_id in ("before-deploy", "after-deploy"):
        await engine.signal(run_id, "go")
    # Each run is driven by its own version's code, and decoded with its own result type.
    assert await engine.handle("before-deploy").result(timeout=10) == Quote(5)
    assert await engine.handle("after-deploy").result(timeout=10) == QuoteV2(10, "EUR")
    # Passing a workflow object starts exactly that version.
    pinned = await engine.start(pricing_v1, 3)
    assert (await pinned.status()).version == "1"


async def test_versions_compare_as_numbers_and_a_default_wins(make_engine: Any) -> None:
    engine = await make_engine(pricing_v2, pricing_v10, pricing_v1)
    handle = await engine.start("pricing", 1)
    assert (await handle.status()).version == "10"  # not "2": "10" > "2" as numbers
    assert engine.workflows["pricing"] is pricing_v10
    assert engine.workflows.describe() == "pricing (1, 2, 10*)"

    @workflow(name="pricing", version="2.5", default=True)
    async def pricing_stable(n: int) -> str:
        return f"stable: {n}"

    chosen = await make_engine(pricing_v10, pricing_stable, worker=False)
    assert (await (await chosen.start("pricing", 1)).status()).version == "2.5"


def test_same_name_and_version_twice_is_refused(db_url: str) -> None:
    @workflow(name="pricing", version="2")
    async def impostor(n: int) -> str:
        return "impostor"

    with pytest.raises(InvalidConfiguration,
                       match="two workflows are named 'pricing' with version '2'"):
        Engine(db_url, workflows=[pricing_v1, pricing_v2, impostor])
    Engine(db_url, workflows=[pricing_v2, pricing_v2])  # the same object twice is fine

    @workflow(name="pricing", version="3", default=True)
    async def a(n: int) -> str:
        return "a"

    @workflow(name="pricing", version="4", default=True)
    async def b(n: int) -> str:
        return "b"

    with pytest.raises(InvalidConfiguration, match="more than one default version"):
        Engine(db_url, workflows=[a, b])
    with pytest.raises(InvalidConfiguration, match="default must be True or False"):
        workflow(version="5", default="yes")(pricing_v1.fn)  # type: ignore[call-overload]


async def test_an_unregistered_version_is_unknown(make_engine: Any) -> None:
    engine = await make_engine(pricing_v2)
    with pytest.raises(UnknownWorkflowError, match=r"version '1'.*pricing \(2\*\)"):
        await engine.start(pricing_v1, 1)


@workflow(name="sub", version="1")
async def sub_v1() -> str:
    return "sub 1"


@workflow(name="sub", version="2")
async def sub_v2() -> str:
    return "sub 2"


@workflow
async def parent_of_both() -> list[str]:
    one = await perdure.start_child(sub_v1)
    two = await perdure.start_child(sub_v2)
    return [await one.result(), await two.result()]


async def test_children_start_the_version_they_name(make_engine: Any) -> None:
    engine = await make_engine(parent_of_both, sub_v1, sub_v2)
    handle = await engine.start(parent_of_both, id="par")
    assert await handle.result(timeout=10) == ["sub 1", "sub 2"]
    kids = {k.id: k.version for k in await engine.list_runs(parent_id="par")}
    assert kids == {"par/0": "1", "par/1": "2"}


async def test_a_worker_serving_both_versions_finishes_the_old_runs(make_engine: Any) -> None:
    client = await make_engine(pricing_v1, worker=False)
    runs = [await client.start(pricing_v1, i) for i in range(3)]
    await make_engine(pricing_v1, pricing_v2)
    for run in runs:
        await run.signal("go")
    assert [await r.result(timeout=10) for r in runs] == [Quote(0), Quote(1), Quote(2)]
    assert {(await r.status()).status for r in runs} == {RunStatus.COMPLETED}

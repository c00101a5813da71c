"""A database with known runs for the dashboard's tests: one of each shape a person looks at
(a completed order with retries, an event, a stream and a child; a failed saga with its
compensation; a run waiting for a signal; arguments holding markup) and a page-filling batch
of tagged runs."""

from __future__ import annotations

import asyncio
from typing import Any

import perdure
from perdure import Engine, NonRetryable, RetryPolicy, RunStatus, step, workflow
from perdure.testing import wait_for_status

#: the tagged batch: more than one page of the runs list (50 a page)
BATCH = 70
#: flow control: a queue whose one run needs a label no worker has (it stays in line), a limit
EXPORTS = perdure.Queue("exports", concurrency=2)
GPU = perdure.Limit("gpu", concurrency=1)
LABELS = {"region": "eu"}
XSS = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"
_flaky: dict[str, int] = {}


async def release(item: str) -> None:
    return None


@step(compensate=release)
async def reserve(item: str) -> str:
    return f"shelf/{item}"


@step(retry=RetryPolicy(max_attempts=5, initial_delay=0.01))
async def charge(order: str, cents: int) -> str:
    # Fails its first two attempts: the timeline shows the retries.
    _flaky[order] = _flaky.get(order, 0) + 1
    if _flaky[order] <= 2:
        raise ConnectionError(f"payment gateway timeout (attempt {_flaky[order]})")
    return f"receipt-{order}"


@step(retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
async def ship(item: str) -> None:
    raise NonRetryable(f"cannot ship {item} to the moon")


@workflow
async def notify(order: str) -> str:
    return f"notified {order}"


@workflow
async def order(order_id: str, items: list[str], cents: int) -> str:
    for item in items:
        await reserve(item)
    receipt = await charge(order_id, cents)
    await perdure.set_event("stage", "paid")
    progress = perdure.stream("progress")
    await progress.write("reserved")
    await progress.write("charged")
    await progress.close()
    await perdure.sleep(0.05)
    child = await perdure.start_child(notify, order_id, id=f"{order_id}-notify")
    await child.result()
    return receipt


@workflow
async def fulfil(items: list[str]) -> None:
    for item in items:
        await reserve(item)
    await ship(items[0])


@workflow
async def approval(request: str) -> Any:
    return await perdure.wait_for_signal("approve")


@workflow
async def note(text: str) -> str:
    return text


@workflow
async def batch(i: int) -> int:
    return i


WORKFLOWS = [notify, order, fulfil, approval, note, batch]


async def populate(engine: Engine) -> dict[str, str]:
    """Start and settle the known runs; their ids by role."""
    ids: dict[str, str] = {}
    _flaky.clear()  # a fresh database: the charge fails twice again
    for i in range(BATCH):
        await engine.start(batch, i, id=f"batch-{i:03d}",
                           tags={"customer": "acme" if i % 2 else "globex"})
    done = await engine.start(order, "o-1001", ["book", "lamp"], 4200, id="order-1001",
                              tags={"customer": "acme"})
    failed = await engine.start(fulfil, ["rocket"], id="fulfil-7")
    waiting = await engine.start(approval, "refund #12", id="approval-1")
    waiting2 = await engine.start(approval, "refund #13", id="approval-2")
    markup = await engine.start(note, XSS, id="markup-1")
    await engine.start(batch, -1, id="export-1", queue=EXPORTS, requires={"gpu": "*"})
    await wait_for_status(done, RunStatus.COMPLETED, timeout=30)
    await wait_for_status(failed, RunStatus.FAILED, timeout=30)
    await wait_for_status(waiting, RunStatus.WAITING, timeout=30)
    await wait_for_status(waiting2, RunStatus.WAITING, timeout=30)
    await wait_for_status(markup, RunStatus.COMPLETED, timeout=30)
    for i in range(BATCH):
        await wait_for_status(engine.handle(f"batch-{i:03d}"), RunStatus.COMPLETED, timeout=30)
    ids.update(done=done.id, child="o-1001-notify", failed=failed.id, waiting=waiting.id,
               waiting2=waiting2.id, markup=markup.id, queued="export-1")
    return ids


if __name__ == "__main__":  # a database to look at: python -m tests.dashboard.scenario URL
    import sys

    async def main() -> None:
        async with Engine(sys.argv[1], workflows=WORKFLOWS, park_after=0.01) as engine:
            print(await populate(engine))

    asyncio.run(main())

"""What observability costs per step: the same sequential workflow with logs only, with
Prometheus metrics, with OpenTelemetry tracing (the real SDK, spans exported to nowhere) and
with both.

    .venv/bin/python bench/observe_cost.py [--steps 200] [--runs 10] [--repeat 5]

SQLite with ``synchronous="off"`` on a temporary file, so the commit does not hide the
per-step machinery; each configuration runs ``--runs`` workflows of ``--steps`` steps, one at a
time, ``--repeat`` times, interleaved so drift on a shared machine hits every configuration
alike. Reports the median CPU microseconds per step (the process's CPU time, SQLite's thread
included: steadier than wall time on a shared machine) of each configuration and its
difference to ``off`` (lifecycle logs are always on; no handler prints them here, as in a
library).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from perdure import Engine, step, workflow


@step
async def noop(i: int) -> int:
    return i


@workflow
async def chain(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await noop(i)
    return total


class _Nowhere(SpanExporter):
    """An exporter that drops spans: the SDK's own cost, not a collector's."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass




def _options(name: str) -> dict[str, Any]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Nowhere()))
    return {"off": {}, "metrics": {"metrics": True}, "tracing": {"tracing": provider},
            "both": {"metrics": True, "tracing": provider}}[name]


async def _measure(name: str, folder: Path, steps: int, runs: int) -> float:
    url = f"sqlite:///{folder / f'{name}-{time.monotonic_ns()}.db'}"
    async with Engine(url, workflows=[chain], synchronous="off", **_options(name)) as engine:
        await (await engine.start(chain, 1)).result(timeout=60)  # warm up: schema, caches
        began = time.process_time()
        for _ in range(runs):
            await (await engine.start(chain, steps)).result(timeout=600)
        elapsed = time.process_time() - began
    return elapsed / (runs * steps) * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, help="write the JSON report here")
    args = ap.parse_args()
    names = ["off", "metrics", "tracing", "both"]
    samples: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name in names:
                samples[name].append(await _measure(name, Path(tmp), args.steps, args.runs))
    base = statistics.median(samples["off"])
    report = {n: {"median_us_per_step": statistics.median(v), "samples": v,
                  "over_off_us": statistics.median(v) - base} for n, v in samples.items()}
    for n in names:
        print(f"{n:8s} {report[n]['median_us_per_step']:7.1f} us/step "
              f"({report[n]['over_off_us']:+.1f} vs off)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())

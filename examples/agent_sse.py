"""The travel agent behind a web API: its events streamed to the browser over Server-Sent Events.

    uvicorn agent_sse:app        (from this directory)

* ``POST /threads/{thread}`` starts the agent for a conversation thread. The run's id is derived
  from the thread (``trip-{thread}``): a stateless API finds the run again from the thread
  alone, and a repeated POST (a retried request) starts nothing new.
* ``GET /threads/{thread}/events`` streams the agent's events (``text/event-stream``), live,
  each once and in order even across a worker crash; a reconnecting browser sends
  ``Last-Event-ID`` and resumes after it. The stream ends when the run does.
* ``POST /threads/{thread}/approve`` approves (or, with ``?ok=false``, denies) the booking the
  agent waits for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from travel_agent import trip

import perdure
from perdure import Engine

engine = Engine("sqlite:///agents.db", workflows=[trip], park_after=0.2)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine:
        yield


app = FastAPI(lifespan=lifespan)


def run_id(thread: str) -> str:
    """One run per conversation thread, its id derived from the thread's."""
    return f"trip-{thread}"


@app.post("/threads/{thread}")
async def start(thread: str, request: str) -> dict[str, str]:
    try:
        handle = await engine.start(trip, request, id=run_id(thread))
    except perdure.InvalidConfiguration as exc:
        raise HTTPException(400, str(exc)) from None
    return {"run": handle.id}


@app.get("/threads/{thread}/events")
async def events(thread: str, last_event_id: int | None = Header(None)) -> StreamingResponse:
    handle = engine.handle(run_id(thread))
    try:
        await handle.status()
    except perdure.RunNotFound:
        raise HTTPException(404, f"no thread {thread!r}") from None
    offset = 0 if last_event_id is None else last_event_id + 1

    async def sse() -> AsyncIterator[str]:
        position = offset
        async for event in handle.read_stream("events", offset=offset):
            yield f"id: {position}\nevent: {event['event_kind']}\ndata: {json.dumps(event)}\n\n"
            position += 1
        yield "event: end\ndata: {}\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")


@app.post("/threads/{thread}/approve")
async def approve(thread: str, ok: bool = True) -> dict[str, bool]:
    try:
        await engine.signal(run_id(thread), "approvals", {"book": ok})
    except perdure.RunNotFound:
        raise HTTPException(404, f"no thread {thread!r}") from None
    return {"approved": ok}

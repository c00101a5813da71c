"""The webhook sink against a real HTTP server on 127.0.0.1, and the receiver's check."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import unquote

import pytest

import perdure
from perdure import (
    InvalidConfiguration,
    InvalidSignature,
    OutboxEvent,
    RetryPolicy,
    WebhookRejected,
    WebhookSink,
    verify_webhook,
    workflow,
)
from tests.webhook_server import Received, WebhookServer

SECRET = "whsec-test"


@workflow
async def ship(orders: list[str]) -> None:
    for order in orders:
        await perdure.emit("order.shipped", {"order": order, "total": 12.5}, key=f"ключ/{order}")
    await perdure.emit("batch.done", len(orders))


def _first_attempts(r: Received) -> bool:
    return r.attempt == 1  # every event is refused once, then accepted


async def test_events_arrive_signed_in_order_after_refusals(make_engine: Any) -> None:
    with WebhookServer(SECRET, refuse=_first_attempts) as server:
        engine = await make_engine(ship, outbox=WebhookSink(server.url, secret=SECRET),
                                   outbox_retry=RetryPolicy(max_attempts=5, initial_delay=0.01,
                                                            jitter=0.0))
        await (await engine.start(ship, ["a", "b"], id="w")).result(timeout=10)
        await asyncio.to_thread(server.wait_for, lambda rs: sum(r.status == 204 for r in rs)
                                == 3)
        async with asyncio.timeout(15):  # and the publisher recorded it (the server is up)
            while (await engine.outbox.stats()).pending:
                await asyncio.sleep(0.02)
    assert all(r.signed for r in server.received)
    assert [(r.id, r.attempt, r.status) for r in server.received if r.key == "ключ/a"] == [
        ("w:0", 1, 500), ("w:0", 2, 204)]
    ok = server.answered()
    assert sorted(r.id for r in ok) == ["w:0", "w:1", "w:2"]
    first = next(r for r in ok if r.id == "w:0")
    assert first.body["payload"] == {"order": "a", "total": 12.5}
    assert (first.body["name"], first.body["key"], first.body["run_id"]) == (
        "order.shipped", "ключ/a", "w")
    second = next(r for r in ok if r.id == "w:1")
    assert second.body["position"] > first.body["position"]
    h = first.headers
    assert unquote(h["Perdure-Event-Key"]) == "ключ/a"  # percent-encoded: headers are ASCII
    assert h["Perdure-Event-Id"] == h["Idempotency-Key"] == "w:0"
    assert h["Perdure-Event-Name"] == "order.shipped"
    assert h["Content-Type"] == "application/json"
    done = next(r for r in ok if r.id == "w:2")
    assert done.body["payload"] == 2 and "Perdure-Event-Key" not in done.headers
    assert (await engine.outbox.stats()).failed_attempts == 3


def _event(**kw: Any) -> OutboxEvent:
    fields: dict[str, Any] = dict(id="r:1", name="n", key="k", payload_json='{"a":1}',
                                  run_id="r", position=1, created_at=1.0e9)
    fields.update(kw)
    return OutboxEvent(**fields)


@pytest.mark.sqlite_only
async def test_verify_webhook_refuses_what_is_not_authentic(db_url: str) -> None:
    sink = WebhookSink("http://127.0.0.1:9/x", secret=SECRET)
    body, headers = sink.request_for(_event())
    assert verify_webhook(SECRET, body, headers)["payload"] == {"a": 1}
    assert json.loads(body)["created_at"] == "2001-09-09T01:46:40+00:00"
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_webhook(SECRET, body.replace(b'"a":1', b'"a":2'), headers)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_webhook("another secret", body, headers)
    with pytest.raises(InvalidSignature, match="replay"):
        verify_webhook(SECRET, body, headers, now=time.time() + 3600)
    with pytest.raises(InvalidSignature, match="no valid"):
        verify_webhook(SECRET, body, {})
    lower = {k.lower(): v for k, v in headers.items()}  # header names match in any case
    assert verify_webhook(SECRET.encode(), body, lower)["id"] == "r:1"


@pytest.mark.sqlite_only
async def test_webhook_sink_failures_are_typed(db_url: str) -> None:
    with WebhookServer(SECRET, refuse=lambda r: True) as server:
        sink = WebhookSink(server.url, secret=SECRET)
        with pytest.raises(WebhookRejected, match="answered 500"):
            await sink(_event())
        await sink.aclose()
    closed = WebhookSink("http://127.0.0.1:9/x", secret=SECRET, timeout=2)  # nobody listens
    with pytest.raises(Exception, match="onnect"):
        await closed(_event())
    await closed.aclose()
    for bad in ({"url": "ftp://x/y"}, {"url": 5}, {"url": "http://[::1/x"}, {"url": "http:///x"},
                {"secret": ""}, {"timeout": 0}, {"timeout": float("nan")}):
        kwargs: dict[str, Any] = {"url": "https://example.com/h", "secret": SECRET, **bad}
        url = kwargs.pop("url")
        with pytest.raises(InvalidConfiguration):
            WebhookSink(url, **kwargs)
    with pytest.raises(InvalidConfiguration) as info:
        WebhookSink("ftp://user:hunter2@example.com/h", secret=SECRET)
    assert "hunter2" not in str(info.value)


@pytest.mark.sqlite_only
def test_missing_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # as if it were not installed
    with pytest.raises(InvalidConfiguration, match=r"perdure\[webhook\]"):
        WebhookSink("https://example.com/h", secret=SECRET)

"""A ready outbox sink that POSTs each event to a URL, signed, and the receiver's check.

``Engine(outbox=WebhookSink("https://example.com/hooks", secret=...))``. The request body is a
JSON envelope (the same bytes on every attempt)::

    {"id": "...", "name": "order.shipped", "key": "order-42", "run_id": "...",
     "position": 1042, "created_at": "2030-01-01T00:00:00+00:00", "payload": {...}}

and the headers say what it is without parsing it: ``Perdure-Event-Id`` (also sent as
``Idempotency-Key``), ``Perdure-Event-Name``, ``Perdure-Event-Key`` (absent without a key),
``Perdure-Delivery-Attempt``, ``Perdure-Timestamp`` and ``Perdure-Signature: t=TS,v1=HEX``,
where HEX is HMAC-SHA256 over ``f"{TS}."`` followed by the body, keyed by the secret (the
scheme of Stripe's webhooks; the timestamp lets a receiver refuse old replays). Id, name and
key are percent-encoded in the headers (RFC 3986; plain ASCII names read as they are).
``position`` grows with every emit: within a key, a later event has a greater one.

Any 2xx answer means delivered; anything else (another status, a timeout, a refused
connection) is a failed attempt that the publisher retries. ``httpx`` is imported only here
(the ``perdure[webhook]`` extra); :func:`verify_webhook` needs nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from perdure.errors import InvalidConfiguration, InvalidSignature, WebhookRejected
from perdure.records import OutboxEvent
from perdure.storage.urls import redact

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookSink", "sign", "verify_webhook"]

_SAFE = "!$&'()*+,/:;=@[]~"  # kept as they are in header values, besides letters and digits


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise InvalidConfiguration(
            "perdure.WebhookSink needs the httpx package: pip install 'perdure[webhook]'"
        ) from None
    return httpx


def _secret(secret: object) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes) or not secret:
        raise InvalidConfiguration("a webhook signing secret must be a non-empty str or bytes")
    return secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` + ``body`` keyed by ``secret``."""
    return hmac.new(_secret(secret), timestamp.encode() + b"." + body,
                    hashlib.sha256).hexdigest()


def envelope(event: OutboxEvent) -> bytes:
    """The request body for ``event``: its payload's JSON text embedded as it was stored."""
    head = json.dumps({"id": event.id, "name": event.name, "key": event.key,
                       "run_id": event.run_id, "position": event.position,
                       "created_at": datetime.fromtimestamp(event.created_at, UTC).isoformat()},
                      separators=(",", ":"), ensure_ascii=False)
    return (head[:-1] + ',"payload":' + event.payload_json + "}").encode()


def verify_webhook(secret: str | bytes, body: bytes, headers: Mapping[str, str], *,
                   tolerance: float = 300.0, now: float | None = None) -> dict[str, Any]:
    """Check a received webhook's signature and age; return its decoded JSON envelope.

    ``headers`` is the request's headers (any mapping; names are matched without regard to
    case). Raises ``InvalidSignature`` when the signature header is missing or malformed,
    the signature does not match ``body`` under ``secret``, or the timestamp is more than
    ``tolerance`` seconds away from ``now`` (a replayed old request).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    parts = dict(p.split("=", 1) for p in lower.get("perdure-signature", "").split(",")
                 if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        raise InvalidSignature("no valid Perdure-Signature header (expected t=...,v1=...)")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > tolerance:
        raise InvalidSignature(f"the webhook's timestamp is {age:.0f} s away from now "
                               f"(tolerance {tolerance:g} s): refusing a possible replay")
    if not hmac.compare_digest(sign(secret, stamp, body), given):
        raise InvalidSignature("the webhook's signature does not match its body")
    result: dict[str, Any] = json.loads(body)
    return result


def _http_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class WebhookSink:
    """An outbox sink that POSTs each event to ``url`` as signed JSON (see the module).

    ``secret`` (str or bytes) keys the HMAC-SHA256 signature; ``timeout`` bounds one request
    (seconds); ``headers`` are added to every request (an authorization header, say). Needs
    the ``perdure[webhook]`` extra (``httpx``).
    """

    def __init__(self, url: str, *, secret: str | bytes, timeout: float = 10.0,
                 headers: Mapping[str, str] | None = None) -> None:
        self._httpx = _httpx()
        if not _http_url(url):
            raise InvalidConfiguration(f"a webhook URL must be an http:// or https:// URL, "
                                       f"not {redact(url) if isinstance(url, str) else url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout < math.inf:
            raise InvalidConfiguration(f"timeout must be a positive number, not {timeout!r}")
        self.url = url
        self._secret = _secret(secret)
        self.timeout = float(timeout)
        self.headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> httpx.AsyncClient:
        # A client belongs to one event loop: an engine reopened under another asyncio.run()
        # gets a new one.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = self._httpx.AsyncClient(timeout=self.timeout,
                                                   follow_redirects=False)
            self._loop = loop
        return self._client

    def request_for(self, event: OutboxEvent, *, now: float | None = None
                    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers this sink sends for ``event``."""
        body = envelope(event)
        stamp = str(int(time.time() if now is None else now))
        headers = {**self.headers,
                   "Content-Type": "application/json",
                   "User-Agent": "perdure-outbox",
                   "Idempotency-Key": quote(event.id, safe=_SAFE),
                   "Perdure-Event-Id": quote(event.id, safe=_SAFE),
                   "Perdure-Event-Name": quote(event.name, safe=_SAFE),
                   "Perdure-Delivery-Attempt": str(event.attempt),
                   "Perdure-Timestamp": stamp,
                   "Perdure-Signature": f"t={stamp},v1={sign(self._secret, stamp, body)}"}
        if event.key is not None:
            headers["Perdure-Event-Key"] = quote(event.key, safe=_SAFE)
        return body, headers

    async def __call__(self, event: OutboxEvent) -> None:
        """POST ``event``; raise ``WebhookRejected`` unless the answer is a 2xx."""
        body, headers = self.request_for(event)
        response = await self._session().post(self.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            text = response.text[:300]
            raise WebhookRejected(f"{redact(self.url)} answered {response.status_code}"
                                  + (f": {text}" if text else ""))

    async def aclose(self) -> None:
        """Close the HTTP connections (the engine does it when it closes)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    def __repr__(self) -> str:
        return f"<WebhookSink {redact(self.url)!r}>"

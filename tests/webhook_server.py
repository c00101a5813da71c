"""A real HTTP server on 127.0.0.1 that receives outbox webhooks, for the tests.

It checks each request's signature, records what it received and how it answered, fails on
purpose when ``refuse(request)`` says so (HTTP 500), and can *stall*: while stalling, requests
are held unanswered (the test knows by state that a delivery is in flight, and SIGKILLs its
sender); once released, the held requests are answered 503 (their sender is usually dead).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from perdure import InvalidSignature, verify_webhook

__all__ = ["Received", "WebhookServer"]


@dataclass
class Received:
    """One request as the server saw it."""

    id: str
    name: str
    key: str | None
    attempt: int
    body: dict[str, Any]
    headers: dict[str, str]
    signed: bool  # the signature verified
    status: int = 0  # what it answered (0: held, never answered; -1: the body was cut off)
    sender: str = ""  # the X-Test-Pid header, if any
    held: bool = False  # arrived while the server stalled: held, never answered


@dataclass
class WebhookServer:
    """The server, its thread, and what it received."""

    secret: str
    refuse: Callable[[Received], bool] = lambda r: False
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._stall = threading.Event()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server API
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(length)
        headers = dict(handler.headers.items())
        if len(body) < length:
            # The sender died between its headers and its body (a SIGKILL mid-request).
            with self._changed:
                self.received.append(Received(headers.get("Perdure-Event-Id", ""), "", None,
                                              0, {}, headers, False, status=-1,
                                              sender=headers.get("X-Test-Pid", "")))
                self._changed.notify_all()
            return
        try:
            verify_webhook(self.secret, body, headers)
            signed = True
        except InvalidSignature:
            signed = False
        try:
            data = json.loads(body)
        except ValueError:
            data = {"id": "", "name": "", "key": None, "malformed": body.decode("latin-1")}
        got = Received(data["id"], data["name"], data["key"],
                       int(headers.get("Perdure-Delivery-Attempt", "0")), data, headers, signed,
                       sender=headers.get("X-Test-Pid", ""))
        with self._changed:
            self.received.append(got)
            stall = got.held = self._stall.is_set()
            self._changed.notify_all()
        if stall:
            self._release.wait()
            status = 503
        else:
            status = (400 if "malformed" in data
                      else 500 if (not signed or self.refuse(got)) else 204)
            got.status = status
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except OSError:
            pass  # the sender died while we held its request
        with self._changed:
            self._changed.notify_all()

    def stall(self) -> None:
        """Hold every request from now on, unanswered."""
        self._release.clear()
        self._stall.set()

    def release(self) -> None:
        """Stop holding requests; answer the held ones 503."""
        self._stall.clear()
        self._release.set()

    def wait_for(self, check: Callable[[list[Received]], bool], timeout: float = 15.0) -> None:
        """Block until ``check(received)`` holds (woken by each request)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"webhook server: condition not met within {timeout} s; "
                                       f"{len(self.received)} request(s) received")
                self._changed.wait(remaining)

    def answered(self) -> list[Received]:
        """The requests answered 2xx (delivered), in the order they arrived."""
        with self._changed:
            return [r for r in self.received if 200 <= r.status < 300]

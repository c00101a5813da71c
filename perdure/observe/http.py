"""The HTTP endpoints of a worker: ``/metrics``, ``/livez``, ``/readyz`` (and ``/healthz``).

A small WSGI application served by the standard library's ``wsgiref`` on a thread of its own,
so a probe is answered even while the event loop is busy (which is what liveness measures).
``/metrics`` is ``prometheus_client``'s own WSGI application (content negotiation, OpenMetrics,
compression); it is mounted only when metrics are on, so health alone needs no extra.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from perdure.observe.health import LoopWatch, Readiness

__all__ = ["EndpointServer", "Endpoints"]

StartResponse = Callable[..., Any]

#: seconds the event loop may be overdue before the process counts as stuck (not live)
LIVE_WITHIN = 10.0


class Endpoints:
    """The WSGI application: health from ``readiness`` and ``loop``, metrics from
    ``metrics_app`` (``prometheus_client.make_wsgi_app``) when given."""

    def __init__(self, *, readiness: Callable[[], Readiness], loop: LoopWatch | None,
                 metrics_app: Callable[..., Iterable[bytes]] | None = None,
                 health: bool = True, live_within: float = LIVE_WITHIN) -> None:
        self.readiness = readiness
        self.loop = loop
        self.metrics_app = metrics_app
        self.health = health
        self.live_within = live_within

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", "only GET and HEAD\n",
                          method, [("Allow", "GET, HEAD")])
        if path == "/metrics" and self.metrics_app is not None:
            return self.metrics_app(environ, start_response)
        if self.health and path in ("/livez", "/healthz"):
            stalled = self.loop.stalled_for() if self.loop is not None else 0.0
            if stalled > self.live_within:
                return _reply(start_response, "503 Service Unavailable",
                              f"not live: the event loop is {stalled:.1f} s overdue\n", method)
            return _reply(start_response, "200 OK", "live\n", method)
        if self.health and path == "/readyz":
            state = self.readiness()
            if state.ready:
                return _reply(start_response, "200 OK", f"ready: {state.reason}\n", method)
            return _reply(start_response, "503 Service Unavailable",
                          f"not ready: {state.reason}\n", method)
        if path == "/":
            return _reply(start_response, "200 OK", "".join(f"{p}\n" for p in self.paths()),
                          method)
        return _reply(start_response, "404 Not Found", f"no {path}; try: "
                      f"{', '.join(self.paths())}\n", method)

    def paths(self) -> list[str]:
        """The endpoints served."""
        found = ["/metrics"] if self.metrics_app is not None else []
        return found + (["/livez", "/readyz", "/healthz"] if self.health else [])


def _reply(start_response: StartResponse, status: str, body: str, method: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store"), *(headers or [])])
    return [] if method == "HEAD" else [data]


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request (a slow scrape never delays a probe); no lingering threads."""

    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Probes every few seconds would flood stderr with access lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EndpointServer:
    """Serves ``app`` on ``host:port`` (port 0: a free one, see :attr:`port`) from a daemon
    thread until :meth:`close`."""

    def __init__(self, app: Endpoints, *, host: str, port: int) -> None:
        self.app = app
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app, server_class=server_class,
                                   handler_class=_QuietHandler)
        self.host = host
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"perdure-http-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port`` (the wildcard host shown as it is)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

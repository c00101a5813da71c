"""The dashboard's test set-up: a real uvicorn server on free 127.0.0.1 ports over a database
with known runs (SQLite and PostgreSQL), and one headless Chromium for the module.

The server runs in a thread with its own event loop: the engine that populated the database
keeps serving it (a worker, so a signal sent through the UI drives the run on). Chromium is
the Debian package (``make test`` installs it when missing: ``make browser``), driven by
Playwright's Python client with that executable; ``playwright install`` is never run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from perdure import Engine
from tests.dashboard import scenario

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TOKEN = "dashboard-test-token-0123456789"
#: where the tests save their screenshots: docs/screenshots/ when asked, else a temp dir (a
#: test run must not rewrite files the repository tracks)
SCREENSHOTS = os.environ.get("PERDURE_SCREENSHOTS")


class Served:
    """Two dashboards (one with a token, one read-only) over one populated database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: dict[str, str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.engine: Engine | None = None
        self._ready: Future[None] = Future()
        self._stop: asyncio.Event | None = None
        self._sockets = [socket.socket(), socket.socket()]
        for s in self._sockets:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)  # listening before uvicorn serves: no connection is refused
        self.base = f"http://127.0.0.1:{self._sockets[0].getsockname()[1]}"
        self.read_only = f"http://127.0.0.1:{self._sockets[1].getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.result(timeout=60)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop (with its engine) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        for s in self._sockets:
            s.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def _main(self) -> None:
        import uvicorn

        from perdure.dashboard import app

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Engine(self.url, workflows=scenario.WORKFLOWS, park_after=0.01,
                          shutdown_grace=0.5, queues=[scenario.EXPORTS],
                          limits=[scenario.GPU], labels=scenario.LABELS) as engine:
            self.engine = engine
            self.ids = await scenario.populate(engine)
            servers = [uvicorn.Server(uvicorn.Config(
                app(engine, token=token, refresh=0.5), log_level="warning",
                access_log=False, lifespan="off")) for token in (TOKEN, None)]
            tasks = [asyncio.create_task(s.serve(sockets=[sock]))
                     for s, sock in zip(servers, self._sockets, strict=True)]
            self._ready.set_result(None)
            await self._stop.wait()
            for s in servers:
                s.should_exit = True
            await asyncio.gather(*tasks)


# PostgreSQL first: its session server is started with asyncio.run(), which cannot run once
# Playwright's synchronous client (the browser of the module) holds this thread's event loop.
@pytest.fixture(scope="module",
                params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A dashboard server over a populated database, per backend."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'perdure.db'}"
    else:
        cluster = request.getfixturevalue("pg")
        name = cluster.new_database()
        url = cluster.url(name)
    server = Served(url)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if name is not None:
            request.getfixturevalue("pg").drop(name)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    """One headless Chromium (the system's) with a fresh profile, for the module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install -y "
                    "chromium) to run the dashboard's browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="perdure-chromium-")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 860})
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A new tab, signed out (no cookies)."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where to save screenshots (docs/screenshots/ with PERDURE_SCREENSHOTS=that path)."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder

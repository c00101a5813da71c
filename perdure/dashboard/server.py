"""The dashboard's ASGI application: routes, rendering, sign-in and the actions.

Starlette and Jinja2 are imported here only (the ``perdure[dashboard]`` extra). Every template
is autoescaped; every response carries a Content-Security-Policy that allows scripts and
styles from the dashboard itself only, so even markup that slipped into a payload could not
run. Actions are POSTs of a form with the session's CSRF token, answered first by a
confirmation page, then by the result.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from perdure.dashboard import formatting, pages
from perdure.dashboard.filters import RunsQuery, status_choices
from perdure.dashboard.security import COOKIE, Guard
from perdure.engine.engine import Engine
from perdure.errors import InvalidConfiguration, PerdureError, RunNotFound, StorageUnavailable
from perdure.records import RunStatus

try:
    import jinja2
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Perdure dashboard needs Starlette and Jinja2: pip install "
                      "'perdure[dashboard]'") from exc

__all__ = ["build"]

log = logging.getLogger("perdure.dashboard")
HERE = Path(__file__).parent
#: the largest form accepted (a signal's payload is in it)
MAX_FORM = 4 * 1024 * 1024
ACTIONS = ("signal", "cancel", "resume", "fork", "retry")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin: a page's URL never leaks to another site, and forms keep their Origin
    # (under no-referrer a browser sends "Origin: null", which the CSRF check refuses)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def run_url(root: str, run_id: str) -> str:
    """The run page's path (the id quoted whole: a run id may hold any character)."""
    return f"{root}/runs/{quote(run_id, safe='')}"


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response


class Dashboard:
    """The routes of one dashboard over one engine."""

    def __init__(self, engine: Engine, token: str | None, refresh: float) -> None:
        self.engine = engine
        self.refresh = refresh
        self.guard = Guard(token)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        env.filters.update(exact=formatting.exact, duration=formatting.duration,
                           pretty=formatting.pretty_json)
        env.globals.update(run_url=run_url, statuses=status_choices(), RunStatus=RunStatus)
        self.env = env

    # -- rendering --------------------------------------------------------------------------

    def render(self, request: Request, name: str, context: dict[str, Any], *,
               status: int = 200) -> HTMLResponse:
        nonce = self.guard.session_nonce(request.cookies.get(COOKIE))
        now = time.time()
        html = self.env.get_template(name).render(
            root=request.scope.get("root_path", ""), now=now,
            ago=lambda value: formatting.relative(value, now),
            signed_in=nonce is not None, read_only=self.guard.read_only,
            csrf=self.guard.csrf_for(nonce) if nonce is not None else "",
            path=request.url.path, refresh_ms=int(self.refresh * 1000), **{"page": "", **context})
        return HTMLResponse(html, status_code=status)

    def problem(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(request, "error.html", {"title": title, "message": message},
                           status=status)

    async def guarded(self, request: Request,
                      page: Callable[[], Awaitable[Response]]) -> Response:
        """``page()``, with the engine's errors as pages a person can read."""
        try:
            return await page()
        except RunNotFound as exc:
            return self.problem(request, 404, "No such run", str(exc))
        except StorageUnavailable as exc:
            return self.problem(request, 503, "Database unavailable", str(exc))
        except PerdureError as exc:
            return self.problem(request, 400, "Not possible", f"{type(exc).__name__}: {exc}")

    # -- pages ------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        async def page() -> Response:
            data = await pages.overview(self.engine, request.query_params.get("window", ""))
            return self.render(request, "overview.html", {"page": "overview", **data})
        return await self.guarded(request, page)

    async def runs(self, request: Request) -> Response:
        search = request.query_params.get("q", "").strip()
        if search:
            # Search by run id: an exact id opens the run.
            try:
                await self.engine.status(search)
            except PerdureError:
                return self.problem(request, 404, "No such run",
                                    f"no run has the id {search!r}")
            return RedirectResponse(run_url(request.scope.get("root_path", ""), search), 303)

        async def page() -> Response:
            try:
                query = RunsQuery.parse(request.query_params)
                data = await pages.runs_page(self.engine, query)
            except InvalidConfiguration as exc:
                return self.render(request, "runs.html",
                                   {"page": "runs", "query": RunsQuery(), "error": str(exc),
                                    "runs": [], "next_cursor": None}, status=400)
            return self.render(request, "runs.html",
                               {"page": "runs", "query": query, "error": None, **data})
        return await self.guarded(request, page)

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        async def page() -> Response:
            data = await pages.run_page(self.engine, run_id, time.time())
            return self.render(request, "run.html", {"page": "run", **data})
        return await self.guarded(request, page)

    # -- signing in -------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if self.guard.read_only:
            return self.problem(request, 403, "Read-only",
                                "this dashboard has no token: start it with --token (or "
                                "PERDURE_DASHBOARD_TOKEN) to allow actions")
        if request.method == "GET":
            return self.render(request, "login.html", {"page": "login", "error": None})
        form = await self._form(request)
        if form is None or not self._same_origin(request):
            return self.problem(request, 403, "Refused", "a sign-in from another site")
        if not self.guard.check_token(form.get("token", "")):
            # The attempt is logged without what was typed.
            log.warning("dashboard: a sign-in with a wrong token from %s",
                        request.client.host if request.client else "?")
            return self.render(request, "login.html",
                               {"page": "login", "error": "wrong token"}, status=403)
        root = request.scope.get("root_path", "")
        response = RedirectResponse(f"{root}/", 303)
        response.set_cookie(COOKIE, self.guard.new_session(), httponly=True,
                            samesite="strict", path=root or "/",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        form = await self._form(request)
        if not self._allowed(request, form):
            return self.problem(request, 403, "Refused", "not signed in, or a stale form")
        root = request.scope.get("root_path", "")
        response = RedirectResponse(f"{root}/", 303)
        response.delete_cookie(COOKIE, path=root or "/")
        return response

    # -- actions ----------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return self.problem(request, 404, "No such action", f"{action!r}")
        if self.guard.read_only:
            return self.problem(request, 403, "Read-only",
                                "this dashboard has no token: actions are off")
        form = await self._form(request)
        if not self._allowed(request, form):
            return self.problem(request, 403, "Refused",
                                "sign in with the dashboard's token first (or the form was "
                                "stale or sent from another site)")
        assert form is not None
        run_id = form.get("run_id", "")
        if form.get("confirmed") != "yes":
            return self.render(request, "confirm.html",
                               {"page": "run", "action": action, "form": form,
                                "run_id": run_id})
        return await self.guarded(request, lambda: self._perform(request, action, form))

    async def _perform(self, request: Request, action: str, form: dict[str, str]) -> Response:
        engine, run_id = self.engine, form.get("run_id", "")
        new_run = None
        if action == "signal":
            try:
                payload = json.loads(form.get("payload") or "null")
            except ValueError as exc:
                return self.problem(request, 400, "Not JSON",
                                    f"the payload is not valid JSON: {exc}")
            sent = await engine.signal(run_id, form.get("name", ""), payload,
                                       idempotency_key=form.get("key") or None)
            message = (f"signal {form.get('name')!r} sent" if sent else
                       "a signal with this idempotency key was sent before: not sent again")
        elif action == "cancel":
            message = ("cancellation requested: the run cancels at its current durable await"
                       if await engine.cancel(run_id)
                       else "the run had already finished: nothing to cancel")
        elif action == "resume":
            await engine.resume(run_id)
            message = "resumed: a worker will drive it now"
        else:
            if action == "fork":
                try:
                    seq = int(form.get("from_seq", ""))
                except ValueError:
                    return self.problem(request, 400, "Not a number",
                                        "fork from: give a journal seq (a whole number)")
            else:
                seq = 0  # retry: the same workflow and arguments, nothing copied
            handle = await engine.fork(run_id, from_seq=seq)
            new_run = handle.id
            message = (f"forked from seq {seq}" if action == "fork"
                       else "retried: a new run with the same arguments")
        log.info("dashboard: %s on run %s", action, run_id)
        return self.render(request, "result.html",
                           {"page": "run", "action": action, "run_id": run_id,
                            "message": message, "new_run": new_run})

    # -- helpers ----------------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str] | None:
        """The urlencoded form of a POST (None if it is not one, or too large)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind != "application/x-www-form-urlencoded":
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return None
        try:
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None

    def _same_origin(self, request: Request) -> bool:
        """A browser names the page a POST comes from; another site's is refused."""
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.headers.get("host", "")

    def _allowed(self, request: Request, form: dict[str, str] | None) -> bool:
        nonce = self.guard.session_nonce(request.cookies.get(COOKIE))
        return (form is not None and nonce is not None and self._same_origin(request)
                and self.guard.check_csrf(nonce, form.get("csrf", "")))


def build(engine: Engine, token: str | None, *, refresh: float = 5.0) -> Starlette:
    """The ASGI application (see :func:`perdure.dashboard.app`)."""
    if not isinstance(engine, Engine):
        raise InvalidConfiguration(f"the dashboard needs an Engine, not {engine!r}")
    if isinstance(refresh, bool) or not isinstance(refresh, int | float) \
            or not 0 <= refresh <= 3600:
        raise InvalidConfiguration(f"refresh must be from 0 to 3600 seconds, not {refresh!r}")
    d = Dashboard(engine, token, float(refresh))
    routes = [
        Route("/", d.overview),
        Route("/runs", d.runs),
        Route("/runs/{run_id:path}", d.run),
        Route("/login", d.login, methods=["GET", "POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Route("/actions/{action}", d.act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Headers)])

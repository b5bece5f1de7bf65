"""The console's FastAPI application: state, rendering, errors and security headers.

Each area's pages and their JSON twins live in a ``routes_*`` module; this one wires them
to the shared :class:`Console` (open store, Kafka client, users) and turns every error into
a 4xx/5xx answer with a reason, as HTML for a person and JSON for a script.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

import streamsource as ss
from streamsource.console.aggregates import load_aggregates
from streamsource.console.auth import (
    Principal,
    Sessions,
    Users,
    authenticate,
    set_session_cookie,
)
from streamsource.console.config import ConsoleConfig
from streamsource.console.errors import ConsoleError, Unavailable, status_of
from streamsource.observability.web import add_metrics_route

HERE = Path(__file__).parent

# Pages load only what the console itself serves: no inline script, no third-party origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class Console:
    """What every request of one console shares."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.aggregates = load_aggregates(config.aggregates)
        self.users = None if config.users_file is None else Users.load(config.users_file)
        self.sessions = Sessions()
        self._store: ss.EventStore | None = None
        self.extensions: dict[str, Any] = {}  # per-area state (Kafka client, rebuilds, ...)

    @property
    def store(self) -> ss.EventStore:
        if self.config.store_url is None:
            raise Unavailable("no event store: start the console with --store URL")
        if self._store is None:
            self._store = ss.open_store(self.config.store_url)
        return self._store

    def masks(self, principal: Principal) -> bool:
        """Whether ``principal`` sees values masked."""
        return self.config.mask_values and principal.role != "admin"

    def close(self) -> None:
        for extension in self.extensions.values():
            close = getattr(extension, "close", None)
            if close is not None:
                close()
        if self._store is not None:
            self._store.close()


templates = Jinja2Templates(directory=HERE / "templates")


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def principal_of(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal)
    return principal


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, or only its content block when htmx asks for a fragment."""
    console = console_of(request)
    principal: Principal | None = getattr(request.state, "principal", None)  # None: login
    context.update(
        principal=principal,
        csrf="" if principal is None else principal.csrf,
        partial=request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true",
        has_store=console.config.store_url is not None,
        has_kafka=console.config.bootstrap is not None,
        auth=console.users is not None,
        masked=principal is not None and console.masks(principal),
    )
    return templates.TemplateResponse(request, template, context, status_code=status)


def _error_response(request: Request, status: int, reason: str) -> Response:
    if wants_html(request) and getattr(request.state, "principal", None) is not None:
        return render(request, "error.html", status=status, status_code=status, reason=reason)
    return JSONResponse({"error": reason}, status_code=status)


def create_app(config: ConsoleConfig) -> FastAPI:
    """The console for ``config`` (its store opens on first use, its users file now)."""
    console = Console(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        console.close()

    app = FastAPI(
        title="streamsource console",
        description="The JSON twins of the console's pages.",
        version=ss.__version__,
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is enough
        redoc_url=None,
    )
    app.state.console = console
    add_metrics_route(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security(request: Request, call_next: Any) -> Response:
        early = authenticate(request, console)
        response: Response = early if early is not None else await call_next(request)
        if request.state.new_session is not None:
            set_session_cookie(request, response, request.state.new_session)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(ss.StreamsourceError)
    async def streamsource_error(request: Request, exc: ss.StreamsourceError) -> Response:
        reason = str(exc) if isinstance(exc, ConsoleError) else f"{type(exc).__name__}: {exc}"
        return _error_response(request, status_of(exc), reason)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        )
        return _error_response(request, 422, reasons)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # a bug, not bad input: logged with its traceback, answered with its name
        logging.getLogger("streamsource.console").error(
            "%s %s failed", request.method, request.url.path, exc_info=exc
        )
        return _error_response(request, 500, f"internal error: {type(exc).__name__}: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_response(request, exc.status_code, str(exc.detail))

    from streamsource.console import (
        routes_admin,
        routes_auth,
        routes_kafka,
        routes_sagas,
        routes_store,
    )

    app.include_router(routes_auth.router)
    app.include_router(routes_store.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_kafka.router)
    app.include_router(routes_sagas.router)
    return app

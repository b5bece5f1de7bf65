"""The HTTP contract every service's router shares: camelCase JSON, ``{error, detail}`` errors.

404 for an unknown id (:class:`NotFound`), 409 for a command the state refuses
(:class:`Refused`, and any other ``DomainError``), 422 for a malformed body or parameter,
503 for a request that came a moment too early (:class:`Unavailable`: what it needs has not
reached the service yet); bad input never reaches a 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import msgspec
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

import streamsource as ss

P = ParamSpec("P")
R = TypeVar("R")


class NotFound(ss.DomainError):
    """An id no aggregate or read model knows."""


class Refused(ss.DomainError):
    """A command the current state refuses."""


class Unavailable(ss.StreamsourceError):
    """What the request needs has not reached this service yet: worth trying again."""

    retriable = True


class WouldWait(Exception):
    """Raised by route code about to wait (sleep, poll) while it runs on the event loop,
    where a wait would hold every other request: :func:`on_loop` runs the route again in the
    thread pool, where it holds only itself (see :func:`wait_allowed`)."""


def wait_allowed() -> None:
    """Call before route code waits: raises :class:`WouldWait` on an event loop's thread.
    Only before the route has written anything: it runs again from the start."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # a worker thread: waiting here holds nobody else
    raise WouldWait


class Camel(BaseModel):
    """A JSON body in camelCase (``smsNumber``), snake_case in Python (``sms_number``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Created(Camel):
    id: str


def encoded(view: Any, status: int = 200) -> Response:
    """``view`` (camelCase keys already) as JSON encoded by msgspec. A route that returns a
    ``Response`` skips FastAPI's validation of its ``response_model`` and its serialisation
    (for a sync route also a second trip through the thread pool): the larger part of a
    read's own CPU. The model still documents the body in /openapi.json; the contract tests
    check that the two agree."""
    return Response(msgspec.json.encode(view), status_code=status, media_type="application/json")


def created(id: str) -> Response:
    """201 with ``{id}``, the answer to a POST that creates something (documented by
    ``response_model=Created``)."""
    return encoded({"id": id}, 201)


def on_loop(local: bool) -> Callable[[Callable[P, R]], Callable[P, Any]]:
    """Run a sync route on the event loop when ``local`` (its service's store is a SQLite
    file), in the thread pool otherwise. FastAPI reads the wrapped function's signature.

    Why: a SQLite read takes tens of microseconds and a commit's fsync a few hundred, while
    the thread pool's hand-off there and back (and a sync route's response validation, a
    second one) cost about 0.35 ms of CPU per request with a few shoppers at once: GIL
    hand-offs and futex wake-ups among the threads (``benchmarks/mall.py``'s round trip went
    from 0.58 to 0.21 ms of the mall's CPU; an order through the stores from 34 to 29 ms,
    with lower checkout-to-approved times). A commit waiting its turn behind the group
    committer holds the loop meanwhile (the store's writers never wait on the loop, so it
    always ends), as does one waiting for another process's write lock on the same file
    (a split mall's local transport saving its read position there, at most twice a
    second; the store's timeout bounds it). Point reads and commands only: a list or a
    search, whose cost grows with the data, stays in the thread pool. On PostgreSQL every
    statement is a network round trip: its routes keep the thread pool so that the loop
    goes on serving others meanwhile."""

    def decorate(fn: Callable[P, R]) -> Callable[P, Any]:
        if not local:
            return fn

        @functools.wraps(fn)
        async def run_on_loop(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except WouldWait:  # it must wait for something: not here, holding the loop
                return await run_in_threadpool(fn, *args, **kwargs)

        return run_on_loop

    return decorate


def serve_routes(app: FastAPI, router: APIRouter) -> None:
    """Serve ``router``'s routes (their paths, tags and responses already carry its prefix
    and settings) as routes of ``app`` itself. ``app.include_router`` keeps each router as a
    branch that a request's path is matched against twice, the chosen one's routes once more:
    about 20 us of a request's 100-150 us inside the app with the mall's nine routers."""
    app.router.routes.extend(router.routes)


def new_id() -> str:
    return str(uuid.uuid4())


def _error(status: int, error: str, detail: object) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


MAX_BODY = 1 << 20  # bytes of a request body: far above any command, far below a memory hog


class BodyTooLarge(Exception):
    pass


class LimitBody:
    """ASGI middleware refusing a request body over ``MAX_BODY`` bytes with 413, whether it
    says its length up front or streams it in chunks."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await too_large_body(send)
            return
        seen = 0
        refused = False

        async def counted() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY and not refused:
                    # answer now: the app turns any error while reading into its own 400
                    refused = True
                    await too_large_body(send)
                if refused:
                    raise BodyTooLarge
            return message

        async def unless_refused(message: Any) -> None:
            if not refused:  # the app's answer to the interrupted read is dropped
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except BodyTooLarge:
            pass


async def too_large_body(send: Any) -> None:
    body = json.dumps(
        {"error": "body_too_large", "detail": f"a request body is at most {MAX_BODY} bytes"}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# The answer to each error a route may raise: status and ``error``; its message is the detail.
# Looked up along the raised type's MRO (NotFound before the DomainError it is), as
# Starlette looks up exception handlers.
ERRORS: dict[type[Exception], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    ss.AggregateNotFound: (404, "not_found"),
    Unavailable: (503, "unavailable"),
    ss.DomainError: (409, "conflict"),
    ss.WrongExpectedVersion: (409, "concurrent_update"),
}


def error_of(exc: Exception) -> tuple[int, str, str] | None:
    """``(status, error, detail)`` answering ``exc``, None for an error that is a bug."""
    for kind in type(exc).__mro__:
        if kind in ERRORS:
            status, error = ERRORS[kind]
            return status, error, str(exc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(LimitBody)

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        status, error, detail = error_of(exc) or (500, "internal_error", "")
        return _error(status, error, detail)

    for kind in ERRORS:
        app.add_exception_handler(kind, answer)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return _error(422, "invalid_request", problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, names.get(exc.status_code, "http_error"), exc.detail)

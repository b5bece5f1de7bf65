"""The mall's routes served straight from ASGI, in front of its FastAPI app.

FastAPI stays the mall's app: it documents every route (``/openapi.json``, ``/docs``) and
serves whatever this front does not take. The front takes the requests that make up an
order: a route whose parameters are string path parameters and at most one JSON body of a
pydantic model, whose endpoint answers a ``Response`` or ``None``. For those it does what
FastAPI would (the same endpoint, the same model validating the body, the same status
codes and ``{error, detail}`` errors) without what surrounds it there: six middlewares
(proxy headers, server errors, telemetry, two body limits, exceptions), an exit stack per
request, a linear scan of every route, dependency solving, a ``Request`` and a ``Response``
object. That was about 60% of the main thread's CPU per request under load (py-spy), which
the mall's commands compete with for the one GIL.

Why by hand: no maintained library serves FastAPI's own routes without FastAPI's stack;
a lighter framework (Starlette alone, Litestar) would serve them without /openapi.json or
without the same validation, and the contract wants both from one app.

Everything else goes to the app unchanged: a path or method no front route matches (so
404, 405 and redirects are FastAPI's), a body that says it is not JSON, queries, the docs.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .http import MAX_BODY, error_of, too_large_body

JSON = b"application/json"
JSON_HEADERS = [(b"content-type", JSON)]


@dataclass(frozen=True)
class Shape:
    """What a path must be to match a route: texts at some segments, parameters at others."""

    literals: tuple[tuple[int, str], ...]  # (segment, text) a path must have
    params: tuple[tuple[int, str], ...]  # (segment, name) of its path parameters

    @property
    def size(self) -> int:
        return len(self.literals) + len(self.params)

    def match(self, segments: list[str]) -> dict[str, Any] | None:
        for i, text in self.literals:
            if segments[i] != text:
                return None
        values = {name: segments[i] for i, name in self.params}
        return values if all(values.values()) else None  # a parameter is never empty


def shape_of(route: Route) -> Shape | None:
    """The shape of ``route``'s path; None for a parameter within a segment."""
    literals, params = [], []
    for i, segment in enumerate(route.path_format.strip("/").split("/")):
        if segment.startswith("{") and segment.endswith("}"):
            params.append((i, segment[1:-1]))
        elif "{" in segment:
            return None
        else:
            literals.append((i, segment))
    return Shape(tuple(literals), tuple(params))


@dataclass(frozen=True)
class FrontRoute:
    """One route the front serves: its endpoint, what to check of a path, how to call it."""

    shape: Shape
    endpoint: Callable[..., Any]
    is_async: bool
    body: tuple[str, type[pydantic.BaseModel]] | None  # the body's parameter and model
    status: int  # of an endpoint that answers None


def front_route(route: APIRoute) -> FrontRoute | None:
    """``route`` as a front route, or None when the front does not take it."""
    dependant = route.dependant
    if (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.dependencies
        or len(dependant.body_params) > 1
        or any(p.field_info.annotation is not str for p in dependant.path_params)
        or any(not isinstance(c, StringConvertor) for c in route.param_convertors.values())
    ):
        return None
    body = None
    if dependant.body_params:
        field = dependant.body_params[0]
        model = field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return None
        body = (field.name, model)
    answers = inspect.signature(route.endpoint).return_annotation
    if isinstance(answers, str):  # postponed: read, not evaluated (the name may be a typing one)
        answers = answers.rsplit(".", 1)[-1]
    if answers not in ("Response", "None", Response, None):
        return None  # FastAPI serialises it by its response model
    shape = shape_of(route)
    if shape is None:
        return None
    return FrontRoute(
        shape=shape,
        endpoint=route.endpoint,
        is_async=inspect.iscoroutinefunction(route.endpoint),
        body=body,
        status=route.status_code or 200,
    )


class Front:
    """An ASGI app serving ``app``'s plain routes itself and passing the rest to ``app``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # (method, segment count) -> the routes that may match, in the app's order. A route
        # the front does not serve keeps its place (None): when it matches first, the request
        # goes to the app, as Starlette's first match would take it there.
        self.table: dict[tuple[str, int], list[tuple[Shape, FrontRoute | None]]] = {}
        for route in app.router.routes:
            if not isinstance(route, Route):
                continue  # a mount or a websocket: the mall has none on the API's paths
            front = front_route(route) if isinstance(route, APIRoute) else None
            shape = front.shape if front is not None else shape_of(route)
            if shape is None:
                continue
            for method in route.methods or ():
                self.table.setdefault((method, shape.size), []).append((shape, front))

    def lookup(self, method: str, path: str) -> tuple[FrontRoute, dict[str, Any]] | None:
        segments = path[1:].split("/")
        for shape, route in self.table.get((method, len(segments)), ()):
            values = shape.match(segments)
            if values is not None:
                return None if route is None else (route, values)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self.lookup(scope["method"], scope["path"])
            if found is not None:
                route, values = found
                if route.body is None or _says_json(scope["headers"]):
                    await self.serve(route, values, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def serve(
        self, route: FrontRoute, values: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await _read_body(scope, receive, send)
        if body is None:
            return  # refused (413) or the client left
        status, headers, content = await self.answer(route, values, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def answer(
        self, route: FrontRoute, values: dict[str, Any], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if route.body is not None:
            name, model = route.body
            try:
                values[name] = model.model_validate_json(body)
            except pydantic.ValidationError as invalid:
                return _error(422, "invalid_request", _problems(invalid, body))
        try:
            if route.is_async:
                result = await route.endpoint(**values)
            else:
                result = await run_in_threadpool(route.endpoint, **values)
        except Exception as exc:
            error = error_of(exc)
            if error is None:
                raise  # uvicorn logs it and answers 500, as FastAPI's stack would
            return _error(*error)
        if result is None:
            return route.status, [], b""
        if not isinstance(result, Response):
            raise TypeError(f"{route.endpoint.__qualname__} answered {type(result).__name__}")
        return result.status_code, result.raw_headers, bytes(result.body)


def _problems(invalid: pydantic.ValidationError, body: bytes) -> list[dict[str, Any]]:
    """What was wrong with ``body``, located as FastAPI locates it: a missing body at
    ``body``, malformed JSON at the offset where it went wrong, a field at its name."""
    if not body:
        return [{"loc": ["body"], "msg": "Field required"}]
    errors = invalid.errors(include_url=False, include_input=False)
    if errors[0]["type"] == "json_invalid":
        try:
            json.loads(body)
        except ValueError as malformed:
            return [
                {"loc": ["body", str(getattr(malformed, "pos", 0))], "msg": "JSON decode error"}
            ]
    return [{"loc": ["body", *(str(part) for part in e["loc"])], "msg": e["msg"]} for e in errors]


def _says_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """The body is JSON to FastAPI (strict about content types, its default): the type is
    ``application/json`` or ``application/*+json``, perhaps with parameters. Anything else,
    no type included, goes to the app, which refuses it its own way."""
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == JSON or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return False


async def _read_body(scope: Scope, receive: Receive, send: Send) -> bytes | None:
    """The request's body, or None after answering 413 for one over ``MAX_BODY`` bytes
    (declared or streamed) or when the client went away."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY):
            await too_large_body(send)
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            await too_large_body(send)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error(status: int, error: str, detail: object) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    content = msgspec.json.encode({"error": error, "detail": detail})
    return status, [*JSON_HEADERS, (b"content-length", str(len(content)).encode())], content

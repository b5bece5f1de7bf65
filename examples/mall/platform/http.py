"""The HTTP contract every service's router shares: camelCase JSON, ``{error, detail}`` errors.

404 for an unknown id (:class:`NotFound`), 409 for a command the state refuses
(:class:`Refused`, and any other ``DomainError``), 422 for a malformed body or parameter;
bad input never reaches a 500.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

import streamsource as ss


class NotFound(ss.DomainError):
    """An id no aggregate or read model knows."""


class Refused(ss.DomainError):
    """A command the current state refuses."""


class Camel(BaseModel):
    """A JSON body in camelCase (``smsNumber``), snake_case in Python (``sms_number``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Created(Camel):
    id: str


def new_id() -> str:
    return str(uuid.uuid4())


def _error(status: int, error: str, detail: object) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(ss.AggregateNotFound)
    async def aggregate_not_found(request: Request, exc: ss.AggregateNotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(ss.DomainError)
    async def refused(request: Request, exc: ss.DomainError) -> JSONResponse:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(ss.WrongExpectedVersion)
    async def busy(request: Request, exc: ss.WrongExpectedVersion) -> JSONResponse:
        return _error(409, "concurrent_update", str(exc))

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

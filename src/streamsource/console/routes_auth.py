"""Logging in and out, and the session a script needs for its CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from streamsource.console.app import console_of, principal_of, render
from streamsource.console.auth import (
    COOKIE,
    MAX_PASSWORD_CHARS,
    Principal,
    check_origin,
    set_session_cookie,
)
from streamsource.console.errors import ConsoleError, Unauthenticated

router = APIRouter()


@dataclass(frozen=True)
class SessionInfo:
    name: str
    role: str
    csrf_token: str
    """Send it as the X-CSRF-Token header with every state-changing request."""


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


def _login(request: Request, name: str, password: str) -> tuple[str, Principal]:
    console = console_of(request)
    check_origin(request)
    if console.users is None:
        raise ConsoleError("this console runs without --auth: there is nothing to log in to")
    user = console.users.check_password(name, password)
    if user is None:
        raise Unauthenticated("unknown user or wrong password")
    console.sessions.end(request.cookies.get(COOKIE))
    return console.sessions.start(user.name, user.role)


def _safe_next(target: str) -> str:
    """Only a path on this console (never another site) after logging in."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), failed=False)


@router.post("/login", include_in_schema=False)
def login_form(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        token, _ = _login(request, name, password)
    except Unauthenticated:
        return render(request, "login.html", status=401, next=_safe_next(next), failed=True)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/api/login", tags=["session"])
def api_login(request: Request, credentials: Credentials) -> JSONResponse:
    """Log in; the answer sets the session cookie and carries the CSRF token."""
    token, principal = _login(request, credentials.name, credentials.password)
    response = JSONResponse(
        {"name": principal.name, "role": principal.role, "csrf_token": principal.csrf}
    )
    set_session_cookie(request, response, token)
    return response


@router.get("/api/session", tags=["session"])
def api_session(request: Request) -> SessionInfo:
    """Who this session is, and its CSRF token."""
    principal = principal_of(request)
    return SessionInfo(principal.name, principal.role, principal.csrf)


@router.post("/logout", include_in_schema=False)
@router.post("/api/logout", tags=["session"])
def logout(request: Request) -> Response:
    console_of(request).sessions.end(request.cookies.get(COOKIE))
    response: Response
    if request.url.path.startswith("/api/"):
        response = JSONResponse({"logged_out": True})
    else:
        response = Response(status_code=204, headers={"HX-Redirect": "/login"})
    response.delete_cookie(COOKIE, path="/")
    return response

"""Who is asking: the users file, login sessions, roles and CSRF protection.

Roles: a **viewer** reads everything (without message values when the console runs with
``--mask-values``); an **admin** may also change things (replay parked messages, rebuild
projections, reset consumer-group offsets). Passwords are stored as argon2id hashes
(argon2-cffi); the users file holds nothing else secret.

Sessions live in this process (a restart logs everyone out): a random token in an
``HttpOnly; SameSite=Strict`` cookie, ``Secure`` whenever the console is reached over HTTPS
or on a non-loopback address. Every state-changing request (any method but GET/HEAD/OPTIONS)
must carry the session's CSRF token in the ``X-CSRF-Token`` header (the pages' htmx sends it
on every request) and, when the browser sends an ``Origin``, come from the console's own.

Without ``--auth`` (allowed on loopback only) there is no login: each visitor gets an admin
session, so CSRF still guards the state-changing requests.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from streamsource.console.config import is_loopback
from streamsource.console.errors import ConsoleError, Forbidden

if TYPE_CHECKING:
    from streamsource.console.app import Console

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
COOKIE = "ss_console_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000
MAX_USERS_FILE_BYTES = 1024 * 1024
USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_PASSWORD_CHARS = 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without a session: the login itself and the files the login page loads.
OPEN_PATHS = ("/login", "/api/login", "/static/")


class BadUsersFile(ConsoleError):
    """The ``--auth`` file cannot be read as a users file."""


class BadUser(ConsoleError):
    """A user name, role or password that cannot be stored."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str


class Users:
    """The users file: ``{"users": {NAME: {"role": ..., "password_hash": "$argon2id$..."}}}``."""

    def __init__(self, users: dict[str, User], path: Path | None = None) -> None:
        self.users = users
        self.path = path
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        # verified against when the name is unknown, so both answers take as long
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    @classmethod
    def load(cls, path: Path) -> Users:
        try:
            with open(path, "rb") as file:
                raw = file.read(MAX_USERS_FILE_BYTES + 1)
        except FileNotFoundError:
            raise BadUsersFile(
                f"no users file at {path}: create it with"
                f" `streamsource console users --file {path} set NAME --role admin`"
            ) from None
        except OSError as exc:
            raise BadUsersFile(f"cannot read the users file {path}: {exc.strerror}") from None
        if len(raw) > MAX_USERS_FILE_BYTES:
            raise BadUsersFile(f"{path} is larger than {MAX_USERS_FILE_BYTES} bytes")
        return cls(parse_users(raw, str(path)), path)

    def check_password(self, name: str, password: str) -> User | None:
        """The user, if ``password`` is theirs."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self.users.get(name)
        try:
            self._hasher.verify(self._decoy if user is None else user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def set(self, name: str, role: str, password: str) -> None:
        """Add or change a user (the caller saves)."""
        if not USER_NAME.fullmatch(name):
            raise BadUser(f"invalid user name {name!r}: 1-64 letters, digits or _ . @ -")
        if role not in ROLES:
            raise BadUser(f"invalid role {role!r}: viewer or admin")
        if not 8 <= len(password) <= MAX_PASSWORD_CHARS:
            raise BadUser(f"a password has 8 to {MAX_PASSWORD_CHARS} characters")
        self.users[name] = User(name, role, self._hasher.hash(password))  # type: ignore[arg-type]

    def remove(self, name: str) -> bool:
        return self.users.pop(name, None) is not None

    def save(self, path: Path) -> None:
        """Write the file atomically, readable by its owner only."""
        document = {
            "users": {
                u.name: {"role": u.role, "password_hash": u.password_hash}
                for u in sorted(self.users.values(), key=lambda u: u.name)
            }
        }
        directory = path.parent if str(path.parent) else Path(".")
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".users-")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(document, file, indent=2)
                file.write("\n")
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise


def parse_users(raw: bytes, where: str) -> dict[str, User]:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUsersFile(f"{where} is not JSON: {exc}") from None
    entries = document.get("users") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise BadUsersFile(f'{where} must hold {{"users": {{NAME: {{...}}}}}}')
    users: dict[str, User] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not USER_NAME.fullmatch(str(name)):
            raise BadUsersFile(f"{where}: invalid entry for user {name!r}")
        role, password_hash = entry.get("role"), entry.get("password_hash")
        if role not in ROLES:
            raise BadUsersFile(f"{where}: user {name!r} has role {role!r}, not viewer or admin")
        if not isinstance(password_hash, str) or not password_hash.startswith("$argon2"):
            raise BadUsersFile(f"{where}: user {name!r} has no argon2 password_hash")
        users[name] = User(name, role, password_hash)
    return users


# -- sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The user behind a request."""

    name: str
    role: Role
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class _Session:
    principal: Principal
    last_seen: float


class Sessions:
    """Session token -> principal, in memory, idle sessions expiring, at most MAX_SESSIONS."""

    def __init__(self, idle_seconds: float = SESSION_IDLE_SECONDS) -> None:
        self._idle = idle_seconds
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def start(self, name: str, role: Role) -> tuple[str, Principal]:
        token = secrets.token_urlsafe(32)
        principal = Principal(name, role, secrets.token_urlsafe(32))
        self._sessions[token] = _Session(principal, time.monotonic())
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return token, principal

    def get(self, token: str | None) -> Principal | None:
        if not token:
            return None
        session = self._sessions.get(token)
        now = time.monotonic()
        if session is None or now - session.last_seen > self._idle:
            self._sessions.pop(token, None)
            return None
        session.last_seen = now
        self._sessions.move_to_end(token)
        return session.principal

    def end(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https" or not is_loopback(request.url.hostname or "")
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")


def authenticate(request: Request, console: Console) -> Response | None:
    """Set ``request.state.principal``, or answer at once (login needed, CSRF refused)."""
    token = request.cookies.get(COOKIE)
    principal = console.sessions.get(token)
    new_token = None
    if principal is None and console.users is None:
        new_token, principal = console.sessions.start("local", "admin")
    request.state.principal = principal
    request.state.new_session = new_token
    path = request.url.path
    if principal is None:
        if path.startswith(OPEN_PATHS):
            return None
        if path.startswith("/api/") or path == "/openapi.json":
            return JSONResponse({"error": "log in first: POST /api/login"}, status_code=401)
        if request.method in SAFE_METHODS:
            return RedirectResponse(f"/login?next={_next(request)}", status_code=303)
        return JSONResponse({"error": "log in first"}, status_code=401)
    if request.method not in SAFE_METHODS and not path.startswith(OPEN_PATHS):
        refused = csrf_refusal(request, principal)
        if refused is not None:
            return JSONResponse({"error": refused}, status_code=403)
    return None


def csrf_refusal(request: Request, principal: Principal) -> str | None:
    """Why a state-changing request is refused (None: it may go on)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != _own_origin(request):
        return f"cross-origin request refused (Origin {origin})"
    sent = request.headers.get(CSRF_HEADER, "")
    if not secrets.compare_digest(sent.encode(), principal.csrf.encode()):
        return f"missing or wrong {CSRF_HEADER} header (the session's CSRF token)"
    return None


def check_origin(request: Request) -> None:
    """Login has no session yet: refuse a login posted from another site."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != _own_origin(request):
        raise Forbidden(f"cross-origin request refused (Origin {origin})")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _next(request: Request) -> str:
    from urllib.parse import quote

    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(target, safe="")


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(f"{principal.name} is a viewer; this needs the admin role")

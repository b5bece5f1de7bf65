"""SASL on the broker, sans-I/O: one exchange per handshake, and the failure limiter.

``SaslExchange.start(mechanism, ...)`` after SaslHandshake; ``step(token)`` for each
SaslAuthenticate, returning the token to send back and, once done, the principal. Every
failure is ``AuthenticationFailed`` with one message for the client whatever went wrong
(unknown user, wrong password, malformed token): the reason goes to the broker's log only.

PLAIN checks the password against the user's stored SCRAM credential (its salt and
iterations): the broker never stores a password, and one ``users set`` serves both.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from streamsource.kafka.security.scram import (
    MECHANISMS as SCRAM_MECHANISMS,
)
from streamsource.kafka.security.scram import (
    ScramCredential,
    ScramError,
    ScramServer,
    decoy_credential,
)

MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)
MAX_PLAIN_BYTES = 1024
CLIENT_MESSAGE = "Authentication failed: invalid username or password"

#: ``username -> {mechanism: credential}`` (empty for an unknown user)
Credentials = Callable[[str], dict[str, ScramCredential]]


class AuthenticationFailed(Exception):
    """SASL_AUTHENTICATION_FAILED; ``reason`` is for the log, ``CLIENT_MESSAGE`` for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepResult:
    token: bytes
    principal: str | None  # set once the exchange succeeded


class SaslExchange:
    """One authentication, from SaslHandshake to the last SaslAuthenticate."""

    def __init__(self, mechanism: str, credentials: Credentials, decoy_secret: bytes) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism}")
        self.mechanism = mechanism
        self._credentials = credentials
        self._decoy_secret = decoy_secret
        self._scram: ScramServer | None = None
        if mechanism != "PLAIN":
            self._scram = ScramServer(
                mechanism,
                lambda user, mech: credentials(user).get(mech),
                nonce=secrets.token_urlsafe(24),
                decoy_secret=decoy_secret,
            )
        self.done = False

    def step(self, token: bytes) -> StepResult:
        if self.done:
            raise AuthenticationFailed("SaslAuthenticate after the exchange finished")
        try:
            if self._scram is None:
                return self._plain(token)
            if self._scram.username is None:
                return StepResult(self._scram.first(token), None)
            answer = self._scram.final(token)
        except ScramError as exc:
            self.done = True
            raise AuthenticationFailed(exc.reason) from None
        self.done = True
        return StepResult(answer, f"User:{self._scram.username}")

    def _plain(self, token: bytes) -> StepResult:
        self.done = True
        if len(token) > MAX_PLAIN_BYTES:
            raise AuthenticationFailed(f"PLAIN token of {len(token)} bytes")
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise AuthenticationFailed("malformed PLAIN token")
        try:
            authzid, username, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("PLAIN token is not UTF-8") from None
        if not username or (authzid and authzid != username):
            raise AuthenticationFailed("PLAIN token without a user, or for another identity")
        stored = self._credentials(username)
        # an unknown user costs the same key derivation as a known one
        credential = next(iter(stored.values()), None) or decoy_credential(
            "SCRAM-SHA-256", username, self._decoy_secret
        )
        if not (credential.verify_password(password) and stored):
            raise AuthenticationFailed(f"wrong password, or no such user, for {username!r}")
        return StepResult(b"", f"User:{username}")


class FailureLimiter:
    """At most ``max_failures`` failed authentications per client address per ``window_ms``;
    beyond that every attempt from the address fails without being checked, until the
    window has passed. Remembers at most ``max_addresses`` addresses (oldest forgotten),
    so a flood of sources cannot grow it."""

    def __init__(
        self, max_failures: int = 10, window_ms: int = 60_000, max_addresses: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window_ms = window_ms
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, list[int]] = OrderedDict()

    def allowed(self, address: str, now_ms: int) -> bool:
        times = self._recent(address, now_ms)
        return len(times) < self.max_failures

    def failed(self, address: str, now_ms: int) -> None:
        times = self._recent(address, now_ms)
        times.append(now_ms)
        self._failures[address] = times[-self.max_failures :]
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now_ms: int) -> list[int]:
        times = [t for t in self._failures.get(address, ()) if now_ms - t < self.window_ms]
        if not times:
            self._failures.pop(address, None)
        return times

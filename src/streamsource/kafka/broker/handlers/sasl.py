"""SaslHandshake, SaslAuthenticate, and the SCRAM user admin APIs (KIP-554).

A failed authentication is answered SASL_AUTHENTICATION_FAILED with one message whatever
the cause, after ``FAILURE_DELAY_S`` (as Kafka's connection.failed.authentication.delay.ms),
and the connection is then closed. An address that failed too often recently fails without
its credentials being looked at (``FailureLimiter``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from streamsource.kafka.broker.auth import AuthRuntime
from streamsource.kafka.broker.handlers.base import HasClock, HasConfig, HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.sasl import (
    SCRAM_MECHANISM_CODES,
    AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from streamsource.kafka.security.sasl import CLIENT_MESSAGE, AuthenticationFailed, SaslExchange
from streamsource.kafka.security.scram import MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential
from streamsource.kafka.storage.security import Users

log = logging.getLogger(__name__)

FAILURE_DELAY_S = 0.1
_MECHANISM_CODES = {name: code for code, name in SCRAM_MECHANISM_CODES.items()}


class SaslContext(HasConfig, HasClock, HasWriter, Protocol):
    @property
    def auth(self) -> AuthRuntime: ...


async def handle_sasl_handshake(
    broker: SaslContext, client: ClientInfo, header: RequestHeader, request: SaslHandshakeRequest
) -> SaslHandshakeResponse:
    enabled = list(broker.config.sasl_mechanisms)
    session = client.session
    if client.listener not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE, mechanisms=enabled)
    if request.mechanism not in enabled:
        return SaslHandshakeResponse(
            error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms=enabled
        )
    await broker.auth.refresh()
    session.sasl = SaslExchange(
        request.mechanism, broker.auth.credentials, broker.auth.users.decoy_secret
    )
    return SaslHandshakeResponse(error_code=ErrorCode.NONE, mechanisms=enabled)


async def handle_sasl_authenticate(
    broker: SaslContext,
    client: ClientInfo,
    header: RequestHeader,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse:
    session = client.session
    exchange = session.sasl
    if not isinstance(exchange, SaslExchange):
        session.close_after_response = True
        return SaslAuthenticateResponse(
            error_code=ErrorCode.ILLEGAL_SASL_STATE,
            error_message="SaslAuthenticate without a SaslHandshake before it",
        )
    limiter = broker.auth.limiter
    now = broker.now_ms()
    try:
        if not limiter.allowed(client.host, now):
            raise AuthenticationFailed(f"too many failed authentications from {client.host}")
        step = exchange.step(bytes(request.auth_bytes))
        # KIP-368: a re-authentication must prove the same identity again
        if step.principal not in (None, session.principal) and session.authenticated:
            raise AuthenticationFailed(
                f"re-authentication as {step.principal}, not {session.principal}"
            )
    except AuthenticationFailed as exc:
        limiter.failed(client.host, now)
        log.warning(
            "authentication failed from %s (%s): %s", client.host, exchange.mechanism, exc.reason
        )
        session.sasl = None
        session.close_after_response = True
        await asyncio.sleep(FAILURE_DELAY_S)
        return SaslAuthenticateResponse(
            error_code=ErrorCode.SASL_AUTHENTICATION_FAILED, error_message=CLIENT_MESSAGE
        )
    lifetime = 0
    if step.principal is not None:
        session.sasl = None
        session.principal = step.principal
        session.authenticated = True
        lifetime = broker.config.sasl_session_lifetime_ms
        session.expires_at_ms = now + lifetime if lifetime else None
    return SaslAuthenticateResponse(
        error_code=ErrorCode.NONE, auth_bytes=step.token, session_lifetime_ms=lifetime
    )


_Result = DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult
_Info = _Result.CredentialInfo
_AlterResult = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult


async def handle_describe_user_scram_credentials(
    broker: SaslContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse:
    await broker.auth.refresh()
    users = broker.auth.users.users
    names = sorted(users) if request.users is None else [u.name for u in request.users]
    results = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            results.append(
                _Result(user=name, error_code=ErrorCode.DUPLICATE_RESOURCE,
                        error_message=f"user {name} is named twice")
            )  # fmt: skip
            continue
        seen.add(name)
        credentials = users.get(name)
        if not credentials:
            results.append(
                _Result(user=name, error_code=ErrorCode.RESOURCE_NOT_FOUND,
                        error_message=f"attempt to describe a user credential that does not exist: {name}")
            )  # fmt: skip
            continue
        results.append(
            _Result(
                user=name,
                error_code=ErrorCode.NONE,
                credential_infos=[
                    _Info(mechanism=_MECHANISM_CODES[m], iterations=c.iterations)
                    for m, c in sorted(credentials.items())
                    if m in _MECHANISM_CODES
                ],
            )
        )
    return DescribeUserScramCredentialsResponse(error_code=ErrorCode.NONE, results=results)


async def handle_alter_user_scram_credentials(
    broker: SaslContext,
    client: ClientInfo,
    header: RequestHeader,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse:
    errors: dict[str, tuple[ErrorCode, str]] = {}
    order: list[str] = []
    changes: list[tuple[str, str, ScramCredential | None]] = []  # None: delete
    counts: dict[tuple[str, str], int] = {}
    entries = [(d.name, d.mechanism) for d in request.deletions]
    entries += [(u.name, u.mechanism) for u in request.upsertions]
    for name, code in entries:
        if name not in order:
            order.append(name)
        key = (name, SCRAM_MECHANISM_CODES.get(code, "?"))
        counts[key] = counts.get(key, 0) + 1
    for deletion in request.deletions:
        problem = _check(deletion.name, deletion.mechanism, counts)
        if problem:
            errors.setdefault(deletion.name, problem)
        else:
            changes.append((deletion.name, SCRAM_MECHANISM_CODES[deletion.mechanism], None))
    for upsert in request.upsertions:
        problem = _check(upsert.name, upsert.mechanism, counts)
        if problem is None and not MIN_ITERATIONS <= upsert.iterations <= MAX_ITERATIONS:
            problem = (
                ErrorCode.UNACCEPTABLE_CREDENTIAL,
                f"iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}",
            )
        if problem is None and not (upsert.salt and upsert.salted_password):
            problem = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "salt and salted password required")
        if problem:
            errors.setdefault(upsert.name, problem)
            continue
        mechanism = SCRAM_MECHANISM_CODES[upsert.mechanism]
        credential = ScramCredential.from_salted_password(
            mechanism, bytes(upsert.salted_password), bytes(upsert.salt), upsert.iterations
        )
        changes.append((upsert.name, mechanism, credential))

    def apply(users: Users) -> None:
        for name, mechanism, credential in changes:
            if name in errors:
                continue  # a user with any bad entry is left as it was
            if credential is None:
                if mechanism not in users.get(name, {}):
                    errors[name] = (
                        ErrorCode.RESOURCE_NOT_FOUND,
                        f"attempt to delete a user credential that does not exist: {name}",
                    )
                    continue
                del users[name][mechanism]
            else:
                users.setdefault(name, {})[mechanism] = credential

    valid = [c for c in changes if c[0] not in errors]
    if valid:
        await broker.writer.run(lambda: broker.auth.users.edit(apply))
    results = []
    for name in order:
        code, message = errors.get(name, (ErrorCode.NONE, None))
        results.append(_AlterResult(user=name, error_code=code, error_message=message))
    return AlterUserScramCredentialsResponse(results=results)


def _check(
    name: str, code: int, counts: dict[tuple[str, str], int]
) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "a user name must not be empty"
    mechanism = SCRAM_MECHANISM_CODES.get(code)
    if mechanism is None:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, f"unknown SCRAM mechanism {code}"
    if counts[(name, mechanism)] > 1:
        return (
            ErrorCode.DUPLICATE_RESOURCE,
            f"user {name} has more than one change for {mechanism}",
        )
    return None

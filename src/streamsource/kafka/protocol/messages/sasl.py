"""SASL (keys 17, 36) and SCRAM credential admin (keys 50, 51), as Kafka declares them.

SaslHandshake picks the mechanism; SaslAuthenticate carries the mechanism's tokens
(KIP-152) and, from v1, the session lifetime the client must re-authenticate within
(KIP-368). Describe/AlterUserScramCredentials (KIP-554) manage users; mechanism codes are
1 = SCRAM-SHA-256 and 2 = SCRAM-SHA-512.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BYTES,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Array,
    Message,
    Struct,
    field,
)

SCRAM_MECHANISM_CODES = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}


class SaslHandshakeRequest(Message, api_key=17, versions="0-1", flexible="none"):
    """SaslHandshake request, versions 0-1 (API key 17)."""

    mechanism: str = field(STRING)


class SaslHandshakeResponse(Message, api_key=17, versions="0-1", flexible="none"):
    """SaslHandshake response: the mechanisms enabled, and an error if not this one."""

    error_code: int = field(INT16)
    mechanisms: list[str] = field(Array(STRING))


class SaslAuthenticateRequest(Message, api_key=36, versions="0-2", flexible="2+"):
    """SaslAuthenticate request, versions 0-2 (API key 36)."""

    auth_bytes: bytes = field(BYTES)


class SaslAuthenticateResponse(Message, api_key=36, versions="0-2", flexible="2+"):
    """SaslAuthenticate response; ``session_lifetime_ms`` 0 means no re-authentication."""

    error_code: int = field(INT16)
    error_message: str | None = field(STRING, nullable="0+", default=None)
    auth_bytes: bytes = field(BYTES)
    session_lifetime_ms: int = field(INT64, "1+")


class DescribeUserScramCredentialsRequest(Message, api_key=50, versions="0", flexible="0+"):
    """DescribeUserScramCredentials request (API key 50); null users: every user."""

    class UserName(Struct):
        name: str = field(STRING)

    users: list[DescribeUserScramCredentialsRequest.UserName] | None = field(ARRAY, nullable="0+")


class DescribeUserScramCredentialsResponse(Message, api_key=50, versions="0", flexible="0+"):
    """DescribeUserScramCredentials response: mechanisms and iterations, never keys."""

    class DescribeUserScramCredentialsResult(Struct):
        class CredentialInfo(Struct):
            mechanism: int = field(INT8)
            iterations: int = field(INT32)

        user: str = field(STRING)
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        credential_infos: list[
            DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult.CredentialInfo
        ] = field(ARRAY)

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    error_message: str | None = field(STRING, nullable="0+", default=None)
    results: list[DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult] = field(
        ARRAY
    )


class AlterUserScramCredentialsRequest(Message, api_key=51, versions="0", flexible="0+"):
    """AlterUserScramCredentials request (API key 51): the client salts and hashes."""

    class ScramCredentialDeletion(Struct):
        name: str = field(STRING)
        mechanism: int = field(INT8)

    class ScramCredentialUpsertion(Struct):
        name: str = field(STRING)
        mechanism: int = field(INT8)
        iterations: int = field(INT32)
        salt: bytes = field(BYTES)
        salted_password: bytes = field(BYTES)

    deletions: list[AlterUserScramCredentialsRequest.ScramCredentialDeletion] = field(ARRAY)
    upsertions: list[AlterUserScramCredentialsRequest.ScramCredentialUpsertion] = field(ARRAY)


class AlterUserScramCredentialsResponse(Message, api_key=51, versions="0", flexible="0+"):
    """AlterUserScramCredentials response: one result per user named."""

    class AlterUserScramCredentialsResult(Struct):
        user: str = field(STRING)
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)

    throttle_time_ms: int = field(INT32)
    results: list[AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult] = field(ARRAY)

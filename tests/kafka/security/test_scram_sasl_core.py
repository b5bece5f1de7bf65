"""The sans-I/O SASL core: SCRAM against the RFC test vectors, PLAIN, the failure limiter."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from streamsource.kafka.security.sasl import AuthenticationFailed, FailureLimiter, SaslExchange
from streamsource.kafka.security.scram import ScramCredential, ScramError, ScramServer

SECRET = b"decoy secret of this test broker"


def rfc_server(mechanism: str, password: str, salt_b64: str, server_nonce: str) -> ScramServer:
    credential = ScramCredential.derive(
        mechanism, password, salt=base64.b64decode(salt_b64), iterations=4096
    )
    users = {"user": credential}
    return ScramServer(
        mechanism, lambda name, _m: users.get(name), nonce=server_nonce, decoy_secret=SECRET
    )


@pytest.mark.parametrize(
    ("mechanism", "salt", "client_nonce", "server_nonce", "proof", "verifier"),
    [
        (  # RFC 5802 section 5
            "SCRAM-SHA-1",
            "QSXCR+Q6sek8bf92",
            "fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ),
        (  # RFC 7677 section 3
            "SCRAM-SHA-256",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ),
    ],
)
def test_rfc_test_vectors(
    mechanism: str, salt: str, client_nonce: str, server_nonce: str, proof: str, verifier: str
) -> None:
    server = rfc_server(mechanism, "pencil", salt, server_nonce)
    nonce = client_nonce + server_nonce
    first = server.first(f"n,,n=user,r={client_nonce}".encode())
    assert first == f"r={nonce},s={salt},i=4096".encode()
    final = server.final(f"c=biws,r={nonce},p={proof}".encode())
    assert final == f"v={verifier}".encode()
    assert server.done


def test_wrong_password_fails_at_the_proof() -> None:
    server = rfc_server("SCRAM-SHA-256", "not pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", "srv")
    server.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    with pytest.raises(ScramError, match="wrong password"):
        server.final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqOsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        )


def test_an_unknown_user_looks_like_a_known_one_until_the_proof() -> None:
    def first_for(name: str) -> bytes:
        server = ScramServer("SCRAM-SHA-512", lambda _n, _m: None, nonce="srv", decoy_secret=SECRET)
        return server.first(f"n,,n={name},r=abc".encode())

    answer = first_for("ghost").decode()
    assert answer.startswith("r=abcsrv,s=") and answer.endswith(",i=8192")
    assert first_for("ghost") == answer.encode()  # the same salt every time
    assert first_for("other") != answer.encode()
    server = ScramServer("SCRAM-SHA-512", lambda _n, _m: None, nonce="srv", decoy_secret=SECRET)
    server.first(b"n,,n=ghost,r=abc")
    with pytest.raises(ScramError, match="wrong password, or no such user"):
        server.final(b"c=biws,r=abcsrv,p=" + base64.b64encode(bytes(64)))


@pytest.mark.parametrize(
    "message",
    [
        b"p=tls-server-end-point,,n=user,r=x",  # channel binding
        b"n,,r=x",  # no user
        b"n,,n=user",  # no nonce
        b"n,,n=user,r=x,m=ext",  # mandatory extension
        b"\xff\xfe",
        b"n,," + b"n=u" * 5000,
    ],
)
def test_malformed_client_first_messages_are_refused(message: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", lambda _n, _m: None, nonce="s", decoy_secret=SECRET)
    with pytest.raises(ScramError):
        server.first(message)


def test_client_final_with_another_nonce_or_binding_is_refused() -> None:
    for final in (b"c=biws,r=zzz,p=AAAA", b"c=eSws,r=xs,p=AAAA", b"c=biws,r=xs"):
        server = rfc_server("SCRAM-SHA-256", "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", "s")
        server.first(b"n,,n=user,r=x")
        with pytest.raises(ScramError):
            server.final(final)


def test_plain_checks_the_password_against_the_scram_credential() -> None:
    users = {"alice": {"SCRAM-SHA-512": ScramCredential.derive("SCRAM-SHA-512", "s3cret")}}

    def exchange() -> SaslExchange:
        return SaslExchange("PLAIN", lambda name: users.get(name, {}), SECRET)

    assert exchange().step(b"\0alice\0s3cret").principal == "User:alice"
    assert exchange().step(b"alice\0alice\0s3cret").principal == "User:alice"
    for token in (b"\0alice\0wrong", b"\0bob\0s3cret", b"bob\0alice\0s3cret", b"junk", b""):
        with pytest.raises(AuthenticationFailed):
            exchange().step(token)


def test_the_failure_limiter_blocks_an_address_for_its_window() -> None:
    limiter = FailureLimiter(max_failures=3, window_ms=60_000, max_addresses=2)
    for t in (0, 10, 20):
        assert limiter.allowed("10.0.0.1", t)
        limiter.failed("10.0.0.1", t)
    assert not limiter.allowed("10.0.0.1", 30)
    assert limiter.allowed("10.0.0.2", 30)  # per address
    assert limiter.allowed("10.0.0.1", 60_011)  # the oldest failure left the window
    limiter.failed("10.0.0.2", 40)
    limiter.failed("10.0.0.3", 50)  # a third address pushes out the oldest
    assert len(limiter._failures) == 2


def test_a_session_past_its_lifetime_may_only_reauthenticate(tmp_path: Path) -> None:
    from streamsource.kafka.broker.auth import AuthRuntime
    from streamsource.kafka.broker.config import BrokerConfig
    from streamsource.kafka.broker.server import ClientInfo, Session
    from streamsource.kafka.protocol import RequestHeader
    from streamsource.kafka.protocol.errors import InvalidRequest

    runtime = AuthRuntime(BrokerConfig(data_dir=tmp_path))
    session = Session(principal="User:alice", authenticated=True)
    session.expires_at_ms = 10_000
    client = ClientInfo("10.0.0.1", 5000, "SASL_SSL", session)
    metadata = RequestHeader(3, 9, 1, "c")
    runtime.check(client, metadata, now_ms=9_999)  # still valid
    with pytest.raises(InvalidRequest, match="expired"):
        runtime.check(client, metadata, now_ms=10_000)
    runtime.check(client, RequestHeader(17, 1, 2, "c"), now_ms=10_000)  # SaslHandshake: fine
    anonymous = ClientInfo("10.0.0.1", 5001, "SASL_SSL", Session(authenticated=False))
    with pytest.raises(InvalidRequest, match="before SASL authentication"):
        runtime.check(anonymous, metadata, now_ms=0)

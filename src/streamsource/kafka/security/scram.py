"""SCRAM (RFC 5802, RFC 7677), server side, sans-I/O: messages in, messages out.

Written here because no maintained Python library implements the *server* side of SCRAM
as a state machine (the client libraries embed their own client side); the primitives are
the stdlib's ``hashlib.pbkdf2_hmac`` and ``hmac``. Only salted, iterated keys are stored
(``ScramCredential``: salt, iterations, StoredKey, ServerKey), never a password.

An exchange with an unknown user runs to the end with a made-up credential (its salt
derived from the user name and a per-broker secret, so it is the same every time) and
fails where a wrong password fails: a client cannot tell the two apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

#: Kafka's mechanisms and their hash; SCRAM-SHA-1 exists only for RFC 5802's test vector.
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512", "SCRAM-SHA-1": "sha1"}
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
MIN_ITERATIONS = 4096  # Kafka's bounds (ScramMechanism)
MAX_ITERATIONS = 16384
DEFAULT_ITERATIONS = 8192
MAX_MESSAGE_BYTES = 4096  # no honest client-first or client-final message comes near


class ScramError(Exception):
    """The exchange failed: bad credentials or a malformed message. ``reason`` is for the
    broker's log only; the client is told nothing more than "authentication failed"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ScramCredential:
    """What the broker keeps for one user and mechanism."""

    mechanism: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(
        cls,
        mechanism: str,
        password: str,
        *,
        salt: bytes | None = None,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> ScramCredential:
        """The credential for ``password`` (a fresh random salt unless given)."""
        digest = HASHES[mechanism]
        salt = os.urandom(32) if salt is None else salt
        salted = hashlib.pbkdf2_hmac(digest, _normalize(password), salt, iterations)
        return cls.from_salted_password(mechanism, salted, salt, iterations)

    @classmethod
    def from_salted_password(
        cls, mechanism: str, salted_password: bytes, salt: bytes, iterations: int
    ) -> ScramCredential:
        """From SaltedPassword, which AlterUserScramCredentials carries instead of a password."""
        digest = HASHES[mechanism]
        client_key = hmac.digest(salted_password, b"Client Key", digest)
        return cls(
            mechanism,
            salt,
            iterations,
            hashlib.new(digest, client_key).digest(),
            hmac.digest(salted_password, b"Server Key", digest),
        )

    def verify_password(self, password: str) -> bool:
        """Whether ``password`` is this credential's (SASL/PLAIN checks with this)."""
        other = ScramCredential.derive(
            self.mechanism, password, salt=self.salt, iterations=self.iterations
        )
        return hmac.compare_digest(other.stored_key, self.stored_key)


def decoy_credential(mechanism: str, username: str, secret: bytes) -> ScramCredential:
    """A credential nobody can match, stable per (secret, user): what an unknown user gets."""
    digest = HASHES[mechanism]
    salt = hmac.digest(secret, username.encode(), "sha256")[:16]
    junk = hmac.digest(secret, b"decoy:" + username.encode(), digest)
    return ScramCredential(mechanism, salt, DEFAULT_ITERATIONS, junk, junk)


#: ``(username, mechanism) -> ScramCredential | None``
Lookup = Callable[[str, str], "ScramCredential | None"]


class ScramServer:
    """One exchange: ``first(client_first)`` -> server-first, ``final(client_final)`` ->
    server-final. ``lookup(username)`` gives the user's credential or None (unknown user:
    a decoy is used and the exchange fails at ``final``). ``nonce`` is the server's part of
    the nonce (tests pass RFC vectors' nonces; the broker passes random ones)."""

    def __init__(
        self,
        mechanism: str,
        lookup: Lookup,
        *,
        nonce: str,
        decoy_secret: bytes,
    ) -> None:
        if mechanism not in HASHES:
            raise ScramError(f"unknown SCRAM mechanism {mechanism}")
        self.mechanism = mechanism
        self._digest = HASHES[mechanism]
        self._lookup = lookup
        self._server_nonce = nonce
        self._decoy_secret = decoy_secret
        self._state = "first"
        self.username: str | None = None
        self._credential: ScramCredential | None = None
        self._known = False
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._gs2_header = ""

    @property
    def done(self) -> bool:
        return self._state == "done"

    def first(self, message: bytes) -> bytes:
        """Answer the client-first message (``n,,n=user,r=nonce``)."""
        if self._state != "first":
            raise ScramError("client-first message out of order")
        self._state = "failed"
        text = _text(message)
        gs2, sep, bare = _split_gs2(text)
        if not sep:
            raise ScramError("client-first message without a GS2 header")
        attributes = _attributes(bare)
        username = _unescape_name(attributes.get("n", ""))
        client_nonce = attributes.get("r", "")
        if not username or not client_nonce or "m" in attributes:
            raise ScramError("client-first message lacks n= or r=, or asks for m=")
        self.username = username
        credential = self._lookup(username, self.mechanism)
        self._known = credential is not None
        if credential is None:
            credential = decoy_credential(self.mechanism, username, self._decoy_secret)
        self._credential = credential
        self._gs2_header = gs2
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        self._state = "final"
        return self._server_first.encode()

    def final(self, message: bytes) -> bytes:
        """Check the client's proof; answer the server-final message (``v=signature``)."""
        if self._state != "final":
            raise ScramError("client-final message out of order")
        self._state = "failed"
        assert self._credential is not None
        text = _text(message)
        without_proof, sep, proof_text = text.rpartition(",p=")
        if not sep:
            raise ScramError("client-final message without a proof")
        attributes = _attributes(without_proof)
        # Kafka checks only that the nonce *ends* with the one it sent, and librdkafka
        # (2.0 at least) sends its own nonce twice; the proof covers the message as sent
        if not attributes.get("r", "").endswith(self._nonce):
            raise ScramError("client-final message with another nonce")
        binding = attributes.get("c", "")
        if _b64(binding) != self._gs2_header.encode():
            raise ScramError("channel binding does not match the GS2 header")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        proof = _b64(proof_text)
        credential = self._credential
        signature = hmac.digest(credential.stored_key, auth_message, self._digest)
        if len(proof) != len(signature):
            raise ScramError("client proof of the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        matches = hmac.compare_digest(
            hashlib.new(self._digest, client_key).digest(), credential.stored_key
        )
        if not (matches and self._known):
            raise ScramError(f"wrong password, or no such user, for {self.username!r}")
        server_signature = hmac.digest(credential.server_key, auth_message, self._digest)
        self._state = "done"
        return b"v=" + base64.b64encode(server_signature)


def _normalize(password: str) -> bytes:
    # SASLprep (RFC 4013) reduces to the identity for the ASCII passwords clients send;
    # Kafka's own ScramFormatter does not apply it either, so neither do we (same keys).
    return password.encode()


def _text(message: bytes) -> str:
    if len(message) > MAX_MESSAGE_BYTES:
        raise ScramError(f"SCRAM message of {len(message)} bytes")
    try:
        return message.decode()
    except UnicodeDecodeError:
        raise ScramError("SCRAM message is not UTF-8") from None


def _split_gs2(text: str) -> tuple[str, str, str]:
    # gs2-header = ("n" / "y" / "p=...") "," [ "a=" authzid ] ","
    flag, _, rest = text.partition(",")
    if flag not in ("n", "y"):
        raise ScramError("channel binding is not supported")
    authzid, sep, bare = rest.partition(",")
    if authzid and not authzid.startswith("a="):
        raise ScramError("malformed GS2 header")
    return f"{flag},{authzid},", sep, bare


def _attributes(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or len(key) != 1:
            # Kafka's extensions (``tokenauth=true``) have longer names: ignored
            if sep and key.isalnum():
                continue
            raise ScramError(f"malformed SCRAM attribute {item[:32]!r}")
        out.setdefault(key, value)
    return out


def _unescape_name(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ScramError("malformed base64 in a SCRAM message") from None

"""``AuthRuntime``: the broker's authentication state (users, failure limiter) and the
gate every request passes before its handler.

On a SASL listener a connection starts unauthenticated and may send only ApiVersions,
SaslHandshake and SaslAuthenticate (``server`` also bounds their size); anything else
closes it, as Kafka does. A session with a lifetime (KIP-368, ``sasl_session_lifetime_ms``)
that has run out may only re-authenticate; any other request closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.log_writer import LogWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol.api import ApiKey
from streamsource.kafka.protocol.errors import InvalidRequest
from streamsource.kafka.protocol.header import RequestHeader
from streamsource.kafka.security.acl import AclBinding, Authorizer
from streamsource.kafka.security.sasl import FailureLimiter
from streamsource.kafka.security.scram import ScramCredential
from streamsource.kafka.storage.security import AclStore, UserStore

log = logging.getLogger(__name__)

#: what an unauthenticated connection may ask
PRE_AUTH_APIS = frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})


class AuthRuntime:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.users = UserStore(config.data_dir)
        self.limiter = FailureLimiter(
            max_failures=config.sasl_max_failures_per_minute, window_ms=60_000
        )
        self.acl_store = AclStore(config.data_dir)
        self.authorizer = Authorizer(
            super_users=config.super_users, allow_if_no_acl=config.allow_everyone_if_no_acl
        )

    def open(self) -> None:
        """Blocking: read the users and ACL files."""
        self.users.reload_if_changed()
        self.authorizer.replace(self.acl_store.load())

    async def change_acls(
        self, writer: LogWriter, change: Callable[[list[AclBinding]], Any]
    ) -> None:
        """Edit the ACLs on disk (on the writer thread), then put them in force."""
        bindings, _ = await writer.run(lambda: self.acl_store.edit(change))
        self.authorizer.replace(bindings)

    async def refresh(self) -> None:
        """Pick up users changed by ``streamsource broker users`` (a stat, in a thread)."""
        await asyncio.to_thread(self.users.reload_if_changed)

    def credentials(self, username: str) -> dict[str, ScramCredential]:
        return self.users.users.get(username, {})

    def check(self, client: ClientInfo, header: RequestHeader, now_ms: int) -> None:
        """Raise ``InvalidRequest`` (the server closes the connection) for a request the
        connection may not send in its state."""
        session = client.session
        if header.api_key in PRE_AUTH_APIS:
            return
        if not session.authenticated:
            raise InvalidRequest(
                header, f"{ApiKey(header.api_key).name} before SASL authentication"
            )
        if session.expires_at_ms is not None and now_ms >= session.expires_at_ms:
            raise InvalidRequest(header, "SASL session expired without re-authentication")

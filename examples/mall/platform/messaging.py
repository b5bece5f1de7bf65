"""Messages between the mall's services, on :mod:`streamsource.messaging`.

Every mall message class (integration events, commands, replies) is registered in
:data:`registry`; each service's ``messages`` module holds the ones it publishes or answers,
its contract with the others. A service is a messaging :class:`~streamsource.messaging.Service`
over its own store: a handler's aggregate events, the messages it publishes or sends, its
read-model rows and the inbox row of the message it handles commit in one transaction, and
its store is its outbox. Channels read like ``mall.ordering.events`` and
``mall.cosec.replies.CreateOrderSaga``.
"""

from __future__ import annotations

import streamsource as ss
from streamsource.messaging import Channels

registry = ss.EventRegistry()
CHANNELS = Channels("mall")

"""The reference mall: Intelli-Mall's services on streamsource, with an HTTP API.

One package per service (stores, baskets, customers, ordering, payments, depot,
notifications, search, cosec), each with ``domain`` (event-sourced aggregates with the
original's event names), ``application`` (commands and queries), ``api`` (FastAPI routers),
``handlers`` (messages in) and ``messages`` (its contract: what it publishes and answers).
Each service owns its store and is a :class:`streamsource.messaging.Service`; services talk
only through messages (integration events, commands and replies), and cosec runs the
create-order saga on :mod:`streamsource.sagas`. :mod:`.app` puts a chosen set of services in
one process; ``streamsource mall serve`` runs it, ``streamsource mall load`` drives it.
"""

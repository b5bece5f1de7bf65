"""The reference mall: Intelli-Mall's services on streamsource, with an HTTP API.

One package per service (stores, baskets, customers, ordering, payments, depot,
notifications, search, cosec), each with ``domain`` (event-sourced aggregates with the
original's event names), ``application`` (commands and queries), ``api`` (FastAPI routers)
and ``handlers`` (messages in and out). Each service owns its store; services talk only
through messages (see :mod:`.platform.messaging`). :mod:`.app` puts a chosen set of services
in one process; ``streamsource mall serve`` runs it.
"""

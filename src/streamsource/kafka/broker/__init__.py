"""The broker server: TCP server, request handlers, topic manager, configuration.

Public entry points are re-exported by ``streamsource.kafka`` (``Broker``,
``EmbeddedBroker``, ``BrokerConfig``).
"""

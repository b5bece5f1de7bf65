"""Broker security, sans-I/O: listeners and TLS settings, SASL (PLAIN, SCRAM), ACLs.

Nothing here touches a socket or a file: ``listeners`` parses listener specs and builds
``ssl.SSLContext`` objects for asyncio (the stdlib's ssl module is the TLS layer), ``scram``
and ``sasl`` are state machines fed client messages and returning server messages,
``acl`` is the authorizer as a pure function over a set of bindings. The broker wires them
(``kafka.broker.session``, ``kafka.broker.authz``) and ``kafka.storage.security`` keeps the
users and ACLs on disk.
"""

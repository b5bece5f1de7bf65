"""Stores' messages: none in; out, its integration events (``stores.messages``, published by
its commands in the same transaction as the change), which baskets' caches follow."""

"""The records field of a decoded message as bytes (tests only)."""

from __future__ import annotations


def one_buffer(records: object) -> bytes:
    """Records decoded from the wire: one buffer (a list of chunks only ever goes out)."""
    assert records is None or isinstance(records, bytes | bytearray | memoryview), records
    return bytes(records or b"")

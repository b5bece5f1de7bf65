"""Request and response headers.

Request header v1 is ``api_key int16, api_version int16, correlation_id int32, client_id
nullable string``; v2 (flexible request versions) adds a tagged-field section. The
client id stays a classic int16-length string even in v2. Response header v0 is the
correlation id alone; v1 (flexible versions, except ApiVersions) adds tagged fields.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from streamsource.kafka.protocol.primitives import (
    Buffer,
    read_nullable_string,
    read_tags,
    write_nullable_string,
)

_FIXED = struct.Struct(">hhi")


class RequestHeader(NamedTuple):
    """What precedes every request body; the broker echoes ``correlation_id``."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None = None


def read_request_header(buf: Buffer, flexible: bool) -> tuple[RequestHeader, int]:
    """Decode a request header starting at offset 0; returns it and where the body starts."""
    api_key, api_version, correlation_id = _FIXED.unpack_from(buf, 0)
    client_id, pos = read_nullable_string(buf, 8)
    if flexible:
        _, pos = read_tags(buf, pos, {})
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def write_request_header(out: bytearray, header: RequestHeader, flexible: bool) -> None:
    """Encode a request header (v2 when ``flexible``, else v1)."""
    out += _FIXED.pack(header.api_key, header.api_version, header.correlation_id)
    write_nullable_string(out, header.client_id)
    if flexible:
        out += b"\x00"

"""FindCoordinator (key 10). From v4 the request batches keys (``coordinator_keys``) and
the response lists one ``Coordinator`` per key; before, one ``key`` and one answer."""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT8,
    INT16,
    INT32,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class FindCoordinatorRequest(Message, api_key=10, versions="0-4", flexible="3+"):
    """FindCoordinator request, versions 0-4 (API key 10)."""

    key: str = field(STRING, "0-3")
    key_type: int = field(INT8, "1+")
    coordinator_keys: list[str] = field(Array(STRING), "4+")


class FindCoordinatorResponse(Message, api_key=10, versions="0-4", flexible="3+"):
    """FindCoordinator response, versions 0-4 (API key 10)."""

    class Coordinator(Struct):
        key: str = field(STRING, "4+")
        node_id: int = field(INT32, "4+")
        host: str = field(STRING, "4+")
        port: int = field(INT32, "4+")
        error_code: int = field(INT16, "4+")
        error_message: str | None = field(STRING, "4+", nullable="4+")

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16, "0-3")
    error_message: str | None = field(STRING, "1-3", nullable="1-3")
    node_id: int = field(INT32, "0-3")
    host: str = field(STRING, "0-3")
    port: int = field(INT32, "0-3")
    coordinators: list[FindCoordinatorResponse.Coordinator] = field(ARRAY, "4+")

"""DescribeConfigs (key 32), as far as admin clients need it."""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT8,
    INT16,
    INT32,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class DescribeConfigsRequest(Message, api_key=32, versions="0-4", flexible="4+"):
    """DescribeConfigs request, versions 0-4 (API key 32)."""

    class DescribeConfigsResource(Struct):
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        configuration_keys: list[str] | None = field(Array(STRING), nullable="0+")

    resources: list[DescribeConfigsRequest.DescribeConfigsResource] = field(ARRAY)
    include_synonyms: bool = field(BOOL, "1+")
    include_documentation: bool = field(BOOL, "3+")


class DescribeConfigsResponse(Message, api_key=32, versions="0-4", flexible="4+"):
    """DescribeConfigs response, versions 0-4 (API key 32)."""

    class DescribeConfigsResult(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+")
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        configs: list[DescribeConfigsResponse.DescribeConfigsResourceResult] = field(ARRAY)

    class DescribeConfigsResourceResult(Struct):
        name: str = field(STRING)
        value: str | None = field(STRING, nullable="0+")
        read_only: bool = field(BOOL)
        is_default: bool = field(BOOL, "0-0")
        config_source: int = field(INT8, "1+", default=-1)
        is_sensitive: bool = field(BOOL)
        synonyms: list[DescribeConfigsResponse.DescribeConfigsSynonym] = field(ARRAY, "1+")
        config_type: int = field(INT8, "3+")
        documentation: str | None = field(STRING, "3+", nullable="0+")

    class DescribeConfigsSynonym(Struct):
        name: str = field(STRING, "1+")
        value: str | None = field(STRING, "1+", nullable="0+")
        source: int = field(INT8, "1+")

    throttle_time_ms: int = field(INT32)
    results: list[DescribeConfigsResponse.DescribeConfigsResult] = field(ARRAY)

"""DescribeConfigs (key 32), AlterConfigs (key 33) and IncrementalAlterConfigs (key 44)."""

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


class AlterConfigsRequest(Message, api_key=33, versions="0-2", flexible="2+"):
    """AlterConfigs request, versions 0-2 (API key 33): replaces a resource's overrides."""

    class AlterConfigsResource(Struct):
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        configs: list[AlterConfigsRequest.AlterableConfig] = field(ARRAY)

    class AlterableConfig(Struct):
        name: str = field(STRING)
        value: str | None = field(STRING, nullable="0+")

    resources: list[AlterConfigsRequest.AlterConfigsResource] = field(ARRAY)
    validate_only: bool = field(BOOL)


class AlterConfigsResponse(Message, api_key=33, versions="0-2", flexible="2+"):
    """AlterConfigs response, versions 0-2 (API key 33)."""

    class AlterConfigsResourceResponse(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)

    throttle_time_ms: int = field(INT32)
    responses: list[AlterConfigsResponse.AlterConfigsResourceResponse] = field(ARRAY)


class IncrementalAlterConfigsRequest(Message, api_key=44, versions="0-1", flexible="1+"):
    """IncrementalAlterConfigs request, versions 0-1 (API key 44): set, delete, append or
    subtract single configs (KIP-339)."""

    class AlterConfigsResource(Struct):
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        configs: list[IncrementalAlterConfigsRequest.AlterableConfig] = field(ARRAY)

    class AlterableConfig(Struct):
        name: str = field(STRING)
        config_operation: int = field(INT8)
        value: str | None = field(STRING, nullable="0+")

    resources: list[IncrementalAlterConfigsRequest.AlterConfigsResource] = field(ARRAY)
    validate_only: bool = field(BOOL)


class IncrementalAlterConfigsResponse(Message, api_key=44, versions="0-1", flexible="1+"):
    """IncrementalAlterConfigs response, versions 0-1 (API key 44)."""

    class AlterConfigsResourceResponse(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)

    throttle_time_ms: int = field(INT32)
    responses: list[IncrementalAlterConfigsResponse.AlterConfigsResourceResponse] = field(ARRAY)

"""ApiVersions (key 18): what the broker supports.

A client newer than the broker may send a version above 3; the broker answers
UNSUPPORTED_VERSION with a version-0 body (``encode_response`` does that by itself), and the
response header is always v0 even for flexible versions. The v3 tagged fields (features,
ZooKeeper migration) are never written while they hold their defaults.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT16,
    INT32,
    INT64,
    STRING,
    Message,
    Struct,
    field,
)


class ApiVersionsRequest(Message, api_key=18, versions="0-3", flexible="3+"):
    """ApiVersions request, versions 0-3 (API key 18)."""

    client_software_name: str = field(STRING, "3+")
    client_software_version: str = field(STRING, "3+")


class ApiVersionsResponse(Message, api_key=18, versions="0-3", flexible="3+"):
    """ApiVersions response, versions 0-3 (API key 18)."""

    class ApiVersion(Struct):
        api_key: int = field(INT16)
        min_version: int = field(INT16)
        max_version: int = field(INT16)

    class SupportedFeatureKey(Struct):
        name: str = field(STRING, "3+")
        min_version: int = field(INT16, "3+")
        max_version: int = field(INT16, "3+")

    class FinalizedFeatureKey(Struct):
        name: str = field(STRING, "3+")
        max_version_level: int = field(INT16, "3+")
        min_version_level: int = field(INT16, "3+")

    error_code: int = field(INT16)
    api_keys: list[ApiVersionsResponse.ApiVersion] = field(ARRAY)
    throttle_time_ms: int = field(INT32, "1+")
    supported_features: list[ApiVersionsResponse.SupportedFeatureKey] = field(ARRAY, "3+", tag=0)
    finalized_features_epoch: int = field(INT64, "3+", tag=1, default=-1)
    finalized_features: list[ApiVersionsResponse.FinalizedFeatureKey] = field(ARRAY, "3+", tag=2)
    zk_migration_ready: bool = field(BOOL, "3+", tag=3)

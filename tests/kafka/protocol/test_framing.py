"""Frames, headers, unsupported versions and the error-code table."""

from __future__ import annotations

import struct

import pytest

from streamsource.errors import KafkaProtocolError
from streamsource.kafka.protocol import (
    SUPPORTED_VERSIONS,
    ApiKey,
    ApiVersionsRequest,
    ApiVersionsResponse,
    EncodeError,
    ErrorCode,
    FrameDecoder,
    FrameTooLarge,
    HeartbeatResponse,
    InvalidFrame,
    InvalidRequest,
    MetadataRequest,
    RequestHeader,
    UnsupportedVersion,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def test_frames_split_across_and_within_reads() -> None:
    stream = _frame(b"first") + _frame(b"") + _frame(b"x" * 1000)
    decoder = FrameDecoder(2000)

    frames: list[bytes | bytearray] = []
    for i in range(0, len(stream), 7):
        frames += decoder.feed(stream[i : i + 7])

    assert frames == [b"first", b"", b"x" * 1000]
    assert decoder.buffered == 0
    assert decoder.feed(_frame(b"a") + _frame(b"b") + b"\x00\x00") == [b"a", b"b"]
    assert decoder.buffered == 2


def test_every_split_of_a_stream_gives_the_same_frames() -> None:
    """Reads of any size, frames ending inside a read or exactly where one ends (a frame
    that fills the rest of the buffer is handed over without a copy): same frames."""
    payloads = [bytes([i]) * size for i, size in enumerate((0, 1, 3, 300, 5, 1024, 2))]
    stream = b"".join(_frame(p) for p in payloads)
    for chunk in range(1, 70):
        decoder = FrameDecoder(2000)
        frames: list[bytes | bytearray] = []
        for i in range(0, len(stream), chunk):
            frames += decoder.feed(memoryview(stream)[i : i + chunk])
        assert frames == payloads, chunk
        assert decoder.buffered == 0


def test_oversized_frame_is_refused_from_its_prefix_alone() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(struct.pack(">i", 1025))
    assert caught.value.size == 1025
    assert isinstance(caught.value, KafkaProtocolError)


def test_negative_frame_size_is_invalid() -> None:
    with pytest.raises(InvalidFrame):
        FrameDecoder().feed(b"\xff\xff\xff\xfe")


def test_unknown_api_key_is_unsupported_with_the_header_parsed() -> None:
    frame = struct.pack(">hhih", 999, 0, 1234, 3) + b"cli"
    with pytest.raises(UnsupportedVersion) as caught:
        decode_request(frame)
    assert caught.value.header == RequestHeader(999, 0, 1234, "cli")


def test_unsupported_version_keeps_the_correlation_id() -> None:
    frame = struct.pack(">hhih", ApiKey.PRODUCE, 99, 77, -1) + b"\x01\x02"
    with pytest.raises(UnsupportedVersion) as caught:
        decode_request(frame)
    assert caught.value.header.correlation_id == 77
    assert caught.value.header.api_version == 99


def test_too_short_frame_has_no_header() -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_request(b"\x00\x12\x00")
    assert caught.value.header is None


def test_api_versions_at_an_unsupported_version_is_answered_with_a_v0_body() -> None:
    # A client newer than us sends ApiVersions v9; Kafka answers error 35 in a v0 body.
    frame = encode_request(RequestHeader(18, 3, 5, "new"), ApiVersionsRequest())[4:]
    frame = frame[:2] + struct.pack(">h", 9) + frame[4:]
    with pytest.raises(UnsupportedVersion) as caught:
        decode_request(frame)
    header = caught.value.header
    body = ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
            for k, (lo, hi) in SUPPORTED_VERSIONS.items()
        ],
    )

    response = encode_response(header, body)

    assert response[4:8] == struct.pack(">i", 5)
    assert response[8:10] == struct.pack(">h", 35)
    _, decoded = decode_response(18, 0, response[4:])
    assert decoded == body


def test_api_versions_v3_response_uses_header_v0_and_writes_no_default_tags() -> None:
    body = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=3)]
    )
    response = encode_response(RequestHeader(18, 3, 1, None), body)
    # size, correlation id, error 0, compact array of 1, key/min/max, element tags,
    # throttle, top-level tags (none written: all hold their defaults)
    assert response.hex() == "0000001300000001000002001200000003000000000000"


def test_flexible_responses_carry_response_header_v1() -> None:
    response = encode_response(RequestHeader(12, 4, 9, None), HeartbeatResponse(error_code=27))
    assert response.hex() == "0000000c000000090000000000001b00"


def test_response_to_the_wrong_api_is_refused() -> None:
    with pytest.raises(EncodeError):
        encode_response(RequestHeader(3, 1, 1, None), HeartbeatResponse())


def test_value_out_of_range_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        encode_response(RequestHeader(12, 0, 1, None), HeartbeatResponse(error_code=70000))


def test_nullable_topics_distinguish_all_from_none() -> None:
    for version, topics in ((1, None), (1, []), (12, None)):
        frame = encode_request(RequestHeader(3, version, 1, None), MetadataRequest(topics=topics))
        _, decoded = decode_request(frame[4:])
        assert isinstance(decoded, MetadataRequest) and decoded.topics == topics


def test_error_codes_match_kafka() -> None:
    assert int(ErrorCode.NONE) == 0
    assert int(ErrorCode.UNKNOWN_SERVER_ERROR) == -1
    assert int(ErrorCode.OFFSET_OUT_OF_RANGE) == 1
    assert int(ErrorCode.CORRUPT_MESSAGE) == 2
    assert int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) == 3
    assert int(ErrorCode.UNSUPPORTED_VERSION) == 35
    assert int(ErrorCode.INVALID_REQUEST) == 42
    assert int(ErrorCode.MEMBER_ID_REQUIRED) == 79
    assert int(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE) == 76
    assert int(ErrorCode.INVALID_RECORD) == 87
    assert ErrorCode(16) is ErrorCode.NOT_COORDINATOR  # type: ignore[call-arg]  # a lookup by value
    assert ErrorCode.NOT_COORDINATOR.retriable
    assert ErrorCode.UNKNOWN_TOPIC_OR_PARTITION.retriable
    assert not ErrorCode.INVALID_TOPIC_EXCEPTION.retriable
    assert not ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER.retriable
    assert "checksum" in ErrorCode.CORRUPT_MESSAGE.message
    assert ErrorCode.FENCED_INSTANCE_ID.message == "fenced instance id"
    assert len({int(code) for code in ErrorCode}) == len(ErrorCode)


def test_precompile_builds_every_codec_up_front() -> None:
    from streamsource.kafka.protocol import precompile
    from streamsource.kafka.protocol.compiler import _cache

    precompile()

    assert len(_cache) >= 2 * sum(high - low + 1 for low, high in SUPPORTED_VERSIONS.values())

"""LogConfig from Kafka topic config names."""

from __future__ import annotations

import pytest

from streamsource.kafka.log import InvalidLogConfig, LogConfig


def test_defaults_are_kafkas() -> None:
    config = LogConfig()
    assert config.segment_bytes == 1024**3
    assert config.retention_ms == 7 * 24 * 3600 * 1000
    assert config.retention_bytes == -1
    assert config.index_interval_bytes == 4096
    assert config.max_message_bytes == 1048588


def test_from_topic_configs_overrides_a_base() -> None:
    base = LogConfig(fsync="always")
    config = LogConfig.from_topic_configs(
        {"retention.ms": "-1", "segment.bytes": "1048576", "cleanup.policy": "delete"}, base=base
    )
    assert (config.retention_ms, config.segment_bytes, config.fsync) == (-1, 1048576, "always")
    assert config.to_topic_configs()["retention.ms"] == "-1"
    assert LogConfig.from_topic_configs(config.to_topic_configs()) == LogConfig(
        retention_ms=-1, segment_bytes=1048576
    )


@pytest.mark.parametrize(
    "configs",
    [
        {"retention.ms": "soon"},
        {"segment.bytes": "0"},
        {"retention.bytes": "-2"},
        {"message.timestamp.type": "Whenever"},
    ],
)
def test_bad_values_are_invalid_config(configs: dict[str, str]) -> None:
    with pytest.raises(InvalidLogConfig) as caught:
        LogConfig.from_topic_configs(configs)
    assert caught.value.error_code == 40

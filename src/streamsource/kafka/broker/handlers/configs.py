"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and this broker).

DescribeConfigs reports every topic config Kafka knows (``kafka.log.config.TOPIC_CONFIGS``)
with its value, where the value comes from (a topic override, a broker setting or Kafka's
default) and, when asked, its synonyms and type, as Kafka does: admin tools show exactly
what a topic would use. Broker configs are set when the broker starts; altering them is
refused.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Protocol

from streamsource.kafka.broker.handlers.base import HasConfig, HasTopics, HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import Topic, TopicError
from streamsource.kafka.log.config import TOPIC_CONFIGS, LogConfig, TopicConfigDef
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.configs import (
    AlterConfigsRequest,
    AlterConfigsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)


class ConfigsContext(HasConfig, HasTopics, HasWriter, Protocol):
    """Configs: the broker's settings and the topics with their overrides."""


RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
# DescribeConfigs config sources
SOURCE_DYNAMIC_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5
# DescribeConfigs config types
_TYPES = {"boolean": 1, "string": 2, "int": 3, "long": 5, "double": 6, "list": 7}
# IncrementalAlterConfigs operations
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3

_Entry = DescribeConfigsResponse.DescribeConfigsResourceResult
_Synonym = DescribeConfigsResponse.DescribeConfigsSynonym


class ConfigValue(NamedTuple):
    """A config as DescribeConfigs reports it."""

    name: str
    value: str
    source: int
    type: str
    synonyms: list[tuple[str, str, int]]
    read_only: bool = False


def topic_config_values(broker: ConfigsContext, topic: Topic) -> list[ConfigValue]:
    """Every topic config, sorted by name, with the value the topic uses and its source."""
    broker_settings = broker.config.topic_log_config({})
    values: list[ConfigValue] = []
    for definition in sorted(TOPIC_CONFIGS.values(), key=lambda d: d.name):
        broker_value, broker_source = _broker_value(definition, broker_settings)
        synonyms = [(definition.broker_name, broker_value, broker_source)]
        override = topic.configs.get(definition.name)
        if override is not None:
            value = definition.format(definition.parse(override))
            if definition.attr is not None:
                value = definition.format(getattr(topic.settings, definition.attr))
            synonyms.insert(0, (definition.name, value, SOURCE_DYNAMIC_TOPIC))
            values.append(
                ConfigValue(definition.name, value, SOURCE_DYNAMIC_TOPIC, definition.type, synonyms)
            )
        else:
            values.append(
                ConfigValue(definition.name, broker_value, broker_source, definition.type, synonyms)
            )
    return values


def _broker_value(definition: TopicConfigDef, settings: LogConfig) -> tuple[str, int]:
    """The broker's value for a topic config's default, and whether Kafka's default."""
    if definition.attr is None:
        return definition.default, SOURCE_DEFAULT
    value = definition.format(getattr(settings, definition.attr))
    return value, SOURCE_DEFAULT if value == definition.default else SOURCE_STATIC_BROKER


def broker_config_values(broker: ConfigsContext) -> list[ConfigValue]:
    """The broker's own settings (read-only: they are set on its command line)."""
    config = broker.config
    plain = {
        "broker.id": (str(config.node_id), "int"),
        "node.id": (str(config.node_id), "int"),
        "num.partitions": (str(config.default_partitions), "int"),
        "auto.create.topics.enable": (str(config.auto_create_topics).lower(), "boolean"),
        "log.dirs": (str(config.data_dir), "string"),
        "socket.request.max.bytes": (str(config.max_frame_bytes), "int"),
        "log.cleaner.enable": (str(config.log_cleaner_enable).lower(), "boolean"),
        "log.cleaner.dedupe.buffer.size": (str(config.log_cleaner_dedupe_buffer_bytes), "long"),
        "log.cleaner.backoff.ms": (str(config.log_cleaner_backoff_ms), "long"),
        "log.retention.check.interval.ms": (str(config.retention_check_interval_ms), "long"),
    }
    values = [
        ConfigValue(name, value, SOURCE_STATIC_BROKER, type_, [], read_only=True)
        for name, (value, type_) in plain.items()
    ]
    settings = config.topic_log_config({})
    for definition in TOPIC_CONFIGS.values():
        value, source = _broker_value(definition, settings)
        values.append(ConfigValue(definition.broker_name, value, source, definition.type, [], True))
    return sorted(values)


async def handle_describe_configs(
    broker: ConfigsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse:
    results: list[DescribeConfigsResponse.DescribeConfigsResult] = []
    for resource in request.resources:
        result = DescribeConfigsResponse.DescribeConfigsResult(
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            error_message=None,
        )
        results.append(result)
        if resource.resource_type == RESOURCE_TOPIC:
            topic = broker.topics.get(resource.resource_name)
            if topic is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                result.error_message = f"no topic {resource.resource_name!r}"
                continue
            values = topic_config_values(broker, topic)
        elif resource.resource_type == RESOURCE_BROKER:
            if resource.resource_name not in ("", str(broker.config.node_id)):
                result.error_code = ErrorCode.INVALID_REQUEST
                result.error_message = f"no broker {resource.resource_name!r} here"
                continue
            values = broker_config_values(broker)
        else:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = f"resource type {resource.resource_type} is not supported"
            continue
        keys = resource.configuration_keys
        result.configs = [
            _Entry(
                name=v.name,
                value=v.value,
                read_only=v.read_only,
                is_default=v.source == SOURCE_DEFAULT,
                config_source=v.source,
                synonyms=[
                    _Synonym(name=n, value=s_value, source=source)
                    for n, s_value, source in v.synonyms
                ]
                if request.include_synonyms
                else [],
                config_type=_TYPES[v.type],
                documentation=None,
            )
            for v in values
            if not keys or v.name in keys
        ]
    return DescribeConfigsResponse(results=results)


class _Refused(Exception):
    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


async def _apply(
    broker: ConfigsContext,
    resource_type: int,
    name: str,
    configs: dict[str, str],
    validate_only: bool,
) -> None:
    if resource_type == RESOURCE_BROKER:
        raise _Refused(
            ErrorCode.INVALID_REQUEST,
            "broker configs are set on the broker's command line and cannot be altered",
        )
    if resource_type != RESOURCE_TOPIC:
        raise _Refused(ErrorCode.INVALID_REQUEST, f"resource type {resource_type} is not supported")
    if broker.topics.get(name) is None:
        raise _Refused(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
    try:
        if validate_only:
            broker.topics.check_configs(configs)
        else:
            await broker.writer.run(partial(broker.topics.alter_configs, name, configs))
    except TopicError as exc:
        raise _Refused(exc.error_code, str(exc)) from exc


async def handle_alter_configs(
    broker: ConfigsContext, client: ClientInfo, header: RequestHeader, request: AlterConfigsRequest
) -> AlterConfigsResponse:
    responses: list[AlterConfigsResponse.AlterConfigsResourceResponse] = []
    for resource in request.resources:
        response = AlterConfigsResponse.AlterConfigsResourceResponse(
            resource_type=resource.resource_type, resource_name=resource.resource_name
        )
        responses.append(response)
        try:
            configs: dict[str, str] = {}
            for config in resource.configs:
                if config.name in configs:
                    raise _Refused(ErrorCode.INVALID_REQUEST, f"config {config.name} named twice")
                if config.value is None:
                    raise _Refused(
                        ErrorCode.INVALID_REQUEST, f"null value not supported for {config.name}"
                    )
                configs[config.name] = config.value
            await _apply(
                broker,
                resource.resource_type,
                resource.resource_name,
                configs,
                request.validate_only,
            )
        except _Refused as exc:
            response.error_code = exc.error_code
            response.error_message = str(exc)
    return AlterConfigsResponse(responses=responses)


async def handle_incremental_alter_configs(
    broker: ConfigsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse:
    responses: list[IncrementalAlterConfigsResponse.AlterConfigsResourceResponse] = []
    for resource in request.resources:
        response = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
            resource_type=resource.resource_type, resource_name=resource.resource_name
        )
        responses.append(response)
        try:
            topic = (
                broker.topics.get(resource.resource_name)
                if resource.resource_type == RESOURCE_TOPIC
                else None
            )
            configs = dict(topic.configs) if topic is not None else {}
            seen: set[str] = set()
            for change in resource.configs:
                if change.name in seen:
                    raise _Refused(ErrorCode.INVALID_REQUEST, f"config {change.name} named twice")
                seen.add(change.name)
                _change(configs, change.name, change.config_operation, change.value)
            await _apply(
                broker,
                resource.resource_type,
                resource.resource_name,
                configs,
                request.validate_only,
            )
        except _Refused as exc:
            response.error_code = exc.error_code
            response.error_message = str(exc)
    return IncrementalAlterConfigsResponse(responses=responses)


def _change(configs: dict[str, str], name: str, operation: int, value: str | None) -> None:
    """Apply one IncrementalAlterConfigs operation to a topic's overrides."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise _Refused(ErrorCode.INVALID_CONFIG, f"unknown topic config name: {name}")
    if operation == OP_DELETE:
        configs.pop(name, None)
        return
    if value is None:
        raise _Refused(ErrorCode.INVALID_REQUEST, f"null value not supported for {name}")
    if operation == OP_SET:
        configs[name] = value
        return
    if operation not in (OP_APPEND, OP_SUBTRACT):
        raise _Refused(ErrorCode.INVALID_REQUEST, f"unknown config operation {operation}")
    if definition.type != "list":
        verb = "append" if operation == OP_APPEND else "subtract"
        raise _Refused(
            ErrorCode.INVALID_CONFIG, f"config value {verb} is not allowed for config key {name}"
        )
    current = configs.get(name, definition.default)
    items = [item.strip() for item in current.split(",") if item.strip()]
    given = [item.strip() for item in value.split(",") if item.strip()]
    if operation == OP_APPEND:
        items += [item for item in given if item not in items]
    else:
        items = [item for item in items if item not in given]
    configs[name] = ",".join(items)

"""Every Kafka-coded error of the broker's layers draws on the one ErrorCode table."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from streamsource.kafka.broker.topics import TopicError
from streamsource.kafka.log import errors as log_errors
from streamsource.kafka.protocol.errors import CodedError, ErrorCode
from streamsource.kafka.records import errors as record_errors
from streamsource.kafka.storage import StorageError


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


@pytest.mark.parametrize(
    "cls", [*_subclasses(log_errors.LogError), *_subclasses(record_errors.RecordError)]
)
def test_codes_are_table_members_and_retriable_follows_the_table(cls: type[CodedError]) -> None:
    assert isinstance(cls.error_code, ErrorCode)
    assert cls.retriable is cls.error_code.retriable


def test_a_full_disk_is_retriable_in_the_log_and_the_broker_files_alike() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    in_log = log_errors.LogStorageError(Path("/data/t-0"), "appending to", full)
    in_state_files = StorageError(Path("/data/groups/offsets.log"), "cannot append to", full)
    assert in_log.error_code == in_state_files.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert in_log.retriable and in_state_files.retriable  # as in Kafka's own table


def test_no_plain_int_copies_of_error_codes_are_left() -> None:
    for module in (log_errors, record_errors):
        copies = [
            name for name, value in vars(module).items() if name.isupper() and type(value) is int
        ]
        assert copies == [], f"{module.__name__} holds its own error numbers: {copies}"


def test_topic_errors_classify_by_their_code() -> None:
    assert not TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, "bad name").retriable
    assert TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "gone").retriable

"""``streamsource broker`` as a process: it prints where it listens, stops cleanly on
SIGTERM/SIGINT with everything flushed, and a restart on the same data dir loses nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker_wire import (
    WireClient,
    batch_of,
    fetch_values,
    idempotent_batch,
    init_producer,
    produce_request,
    produced,
)
from click.testing import CliRunner

from streamsource.cli import cli
from streamsource.errors import BrokerError
from streamsource.kafka.protocol import ErrorCode

pytestmark = pytest.mark.slow


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["broker", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir", "--partitions", "--fsync", "--no-auto-create"):
        assert option in result.output


def test_sigterm_shuts_down_cleanly_and_restart_keeps_everything(
    broker_process: Callable[..., Any],
) -> None:
    proc = broker_process(fsync="always", partitions=2)
    assert f"listening on 127.0.0.1:{proc.port}, data in {proc.data_dir}" in proc.output()
    with WireClient(proc.bootstrap) as client:
        for i in range(10):
            response = client.request(
                produce_request("kept", batch_of(b"m%d" % i), partition=i % 2), 9
            )
            assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    assert proc.terminate() == 0
    assert "stopped cleanly" in proc.output()

    proc.start()
    assert fetch_values(proc.bootstrap, "kept", 0) == [b"m%d" % i for i in range(0, 10, 2)]
    assert fetch_values(proc.bootstrap, "kept", 1) == [b"m%d" % i for i in range(1, 10, 2)]
    assert proc.interrupt() == 0


def test_kill_then_restart_keeps_acknowledged_messages(
    broker_process: Callable[..., Any],
) -> None:
    proc = broker_process(fsync="always")
    with WireClient(proc.bootstrap) as client:
        for i in range(5):
            client.request(produce_request("crash", batch_of(b"c%d" % i)), 9)
    proc.kill()
    proc.start()
    assert fetch_values(proc.bootstrap, "crash") == [b"c%d" % i for i in range(5)]


def test_no_auto_create_and_port_in_use(broker_process: Callable[..., Any], tmp_path: Path) -> None:
    proc = broker_process(auto_create=False)
    with WireClient(proc.bootstrap) as client:
        response = client.request(produce_request("absent", batch_of(b"x")), 9)
    assert (
        response.responses[0].partition_responses[0].error_code
        == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )
    with pytest.raises(BrokerError, match="cannot listen"):
        broker_process(data_dir=tmp_path / "other", port=proc.port)


def test_second_broker_on_the_same_data_dir_is_refused(
    broker_process: Callable[..., Any],
) -> None:
    proc = broker_process()
    with pytest.raises(BrokerError, match="in use by another broker"):
        broker_process(data_dir=proc.data_dir)


def test_idempotent_state_is_rebuilt_from_the_log_after_kill(
    broker_process: Callable[..., Any],
) -> None:
    proc = broker_process(fsync="always")
    with WireClient(proc.bootstrap) as client:
        pid, epoch = init_producer(client)
        last = idempotent_batch(pid, epoch, 2, b"c")
        assert produced(client, "idem", idempotent_batch(pid, epoch, 0, b"a", b"b")) == (0, 0)
        assert produced(client, "idem", last) == (0, 2)
    proc.kill()  # no snapshot written: the state must come from replaying the log
    proc.start()
    with WireClient(proc.bootstrap) as client:
        assert produced(client, "idem", last) == (ErrorCode.NONE, 2)  # a retry, not a copy
        out_of_order = idempotent_batch(pid, epoch, 9, b"z")
        assert produced(client, "idem", out_of_order)[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert fetch_values(proc.bootstrap, "idem") == [b"a", b"b", b"c"]

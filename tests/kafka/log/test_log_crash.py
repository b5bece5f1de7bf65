"""kill -9 while a process appends and flushes: every flushed batch survives, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from log_batches import records_in

from streamsource.kafka.log import LogConfig, PartitionLog

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from log_batches import make_batch
    from streamsource.kafka.log import LogConfig, PartitionLog

    config = LogConfig(segment_bytes=4096, index_interval_bytes=256, fsync="always")
    log = PartitionLog.open(Path(sys.argv[1]), config, now_ms=0)
    i = 0
    while True:
        tag = f"r{sys.argv[3]}m{i}"
        info = log.append([make_batch(3, tag=tag, value_size=40)], now_ms=0)
        log.flush()
        print(info.base_offset, tag, flush=True)  # acknowledged: on disk
        i += 1
    """
)


@pytest.mark.slow
def test_kill_9_loses_nothing_that_was_flushed(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    acked: list[tuple[int, str]] = []
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(Path(__file__).parent), str(round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for seen, line in enumerate(proc.stdout, 1):
            offset, tag = line.split()
            acked.append((int(offset), tag))
            if seen == 100:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: maybe in the middle of an append
        proc.wait()
        proc.stdout.close()
    log = PartitionLog.open(directory, LogConfig(segment_bytes=4096), now_ms=0)
    records = records_in(log.read(0, 1 << 30))
    assert [o for o, _, _ in records] == list(range(log.log_end_offset))  # contiguous
    values = [v for _, _, v in records]
    assert len(set(values)) == len(values)  # nothing written twice
    by_offset = {o: v for o, _, v in records}
    for acked_offset, acked_tag in acked:  # every acknowledged batch, where it was acknowledged
        for delta in range(3):
            expected = f"{acked_tag}:{delta}".encode().ljust(40, b".")
            assert by_offset[acked_offset + delta] == expected
    log.close()

"""The broker process reuses freed ~1 MB buffers instead of faulting fresh pages in each time."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource, sys
from streamsource.kafka.broker.allocator import keep_large_buffers
if sys.argv[1] == "keep":
    assert keep_large_buffers()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
bytes(1 << 20)  # the first one may fault its pages in
before = faults()
for _ in range(50):  # as a broker does: a few ~1 MB requests in flight, then freed
    buffers = [bytearray(1 << 20) for _ in range(6)]
    del buffers
print(faults() - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_freed_request_buffers_are_reused_without_page_faults() -> None:
    default = page_faults("default")
    kept = page_faults("keep")
    # glibc's default: most rounds' buffers are mapped (or trimmed) and faulted in anew
    assert default > 50 * 400
    # kept in the heap: only the first round faults its 6 MB (1,536 pages) in
    assert kept < 3 * 1536

"""The payments service as a process of its own, for the kill -9 tests; runs until killed:

python payments_process.py kafka PAYMENTS_URL BOOTSTRAP   # KafkaTransport([payments])
python payments_process.py local PAYMENTS_URL ORDERS_URL  # LocalTransport([orders, payments])
"""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack

import streamsource as ss
from messaging.shop import orders_service, payments_service
from streamsource.messaging import KafkaTransport, LocalTransport


def main() -> None:
    mode, payments_url, other = sys.argv[1:4]
    with ExitStack() as stack:
        payments = payments_service(stack.enter_context(ss.open_store(payments_url)))
        if mode == "kafka":
            stack.enter_context(KafkaTransport([payments], other))
        else:
            orders = orders_service(stack.enter_context(ss.open_store(other)))
            stack.enter_context(LocalTransport([orders, payments]))
        print("ready", flush=True)
        threading.Event().wait()  # until SIGKILL (or SIGTERM)


if __name__ == "__main__":
    main()

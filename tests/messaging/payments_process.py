"""The payments service as a process of its own, for the kill -9 test:
``python payments_process.py STORE_URL BOOTSTRAP`` runs until killed."""

from __future__ import annotations

import sys
import threading

import streamsource as ss
from messaging.shop import payments_service
from streamsource.messaging import KafkaTransport


def main() -> None:
    store_url, bootstrap = sys.argv[1], sys.argv[2]
    with ss.open_store(store_url) as store:
        service = payments_service(store)
        with KafkaTransport([service], bootstrap):
            print("ready", flush=True)
            threading.Event().wait()  # until SIGKILL (or SIGTERM)


if __name__ == "__main__":
    main()

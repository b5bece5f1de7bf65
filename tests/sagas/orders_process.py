"""The orders service with its saga engine as a process of its own, for the kill -9 test:
``python orders_process.py STORE_URL BOOTSTRAP`` runs until killed."""

from __future__ import annotations

import sys
import threading

import streamsource as ss
from sagas.mall import PlaceOrder, orders_service
from streamsource.messaging import KafkaTransport
from streamsource.sagas import SagaEngine


def main() -> None:
    store_url, bootstrap = sys.argv[1], sys.argv[2]
    with ss.open_store(store_url) as store:
        service = orders_service(store)
        engine = SagaEngine(service, [PlaceOrder])
        with KafkaTransport([service], bootstrap), engine:
            print("ready", flush=True)
            threading.Event().wait()  # until SIGKILL (or SIGTERM)


if __name__ == "__main__":
    main()

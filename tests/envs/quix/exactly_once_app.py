# mypy: ignore-errors
"""A Quix Streams app with ``processing_guarantee="exactly-once"``: running totals per
account, each payment's new total written to an output topic, in transactions.

Usage: ``python exactly_once_app.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP STATE_DIR``.
Each payment is ``{"id": N, "account": A, "amount": X}``; each output record is
``{"id": N, "account": A, "total": T}``. Processing is slowed a little (a few ms per
payment) so that a test can kill the app while a transaction is open. Settings a user
would shorten to recover faster after a crash: the group session (6 s) and the transaction
timeout (10 s, after which the broker aborts what the dead app left open).
"""

import sys
import time

from quixstreams import Application


def main() -> None:
    bootstrap, input_name, output_name, group, state_dir = sys.argv[1:6]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        processing_guarantee="exactly-once",
        commit_interval=0.3,
        consumer_extra_config={"session.timeout.ms": 6000},
        producer_extra_config={"transaction.timeout.ms": 10000},
    )
    payments = app.topic(input_name, value_deserializer="json", key_deserializer="str")
    totals = app.topic(output_name, value_serializer="json", key_serializer="str")

    def add(value: dict, state) -> dict:
        time.sleep(0.005)
        total = state.get("total", 0) + value["amount"]
        state.set("total", total)
        return {"id": value["id"], "account": value["account"], "total": total}

    app.dataframe(payments).apply(add, stateful=True).to_topic(totals)
    print("running", flush=True)
    app.run()


if __name__ == "__main__":
    main()

# mypy: ignore-errors
"""A Quix Streams app as users write one: running totals per account, kept in state.

Runs in its own environment (``.cache/envs/quix``, built by ``scripts/test`` from
``requirements.txt``): Quix Streams pins confluent-kafka below the version our lock has.
Usage: ``python totals_app.py BOOTSTRAP INPUT_TOPIC GROUP STATE_DIR``. Every update prints one
JSON line ``{"account": ..., "total": ...}``; the state lives in RocksDB under STATE_DIR and
in the changelog topic Quix creates (``cleanup.policy=compact``), from which a restart with
an empty STATE_DIR restores it.
"""

import json
import sys

from quixstreams import Application


def main() -> None:
    bootstrap, topic_name, group, state_dir = sys.argv[1:5]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=0.2,
    )
    topic = app.topic(topic_name, value_deserializer="json", key_deserializer="str")

    def add(value: dict, state) -> dict:
        total = state.get("total", 0) + value["amount"]
        state.set("total", total)
        return {"account": value["account"], "total": total}

    def show(value: dict) -> None:
        print(json.dumps(value), flush=True)

    app.dataframe(topic).apply(add, stateful=True).update(show)
    print("running", flush=True)
    app.run()


if __name__ == "__main__":
    main()

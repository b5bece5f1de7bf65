# mypy: ignore-errors
"""A faust-streaming app as users write one: running totals per account in a Table.

Runs in its own environment (``.cache/envs/faust``, built by ``scripts/test`` from
``requirements.txt``). Usage: ``python totals_app.py BOOTSTRAP INPUT_TOPIC APP_ID DATA_DIR``.
Every update prints one JSON line ``{"account": ..., "total": ...}``. The table lives in
memory and in its changelog topic (``<APP_ID>-totals-changelog``, ``cleanup.policy=compact``),
from which every start restores it.
"""

import json
import sys

import faust


def main() -> None:
    bootstrap, topic_name, app_id, data_dir = sys.argv[1:5]
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=data_dir,
        topic_partitions=1,
        topic_replication_factor=1,
        web_enabled=False,
        broker_commit_every=1,
        broker_commit_interval=0.2,
    )
    payments = app.topic(topic_name, key_type=str, value_serializer="json")
    totals = app.Table("totals", default=int, partitions=1)

    @app.agent(payments)
    async def add(stream):
        async for payment in stream:
            account = payment["account"]
            totals[account] += payment["amount"]
            line = json.dumps({"account": account, "total": totals[account]})
            # the worker redirects sys.stdout into its log: write to the real stdout
            sys.__stdout__.write(line + "\n")
            sys.__stdout__.flush()

    sys.argv = [sys.argv[0], "worker", "--loglevel", "info", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()

"""The job the process tests run with ``streamsource streams run count_job:make``: per-key
1-second tumbling counts of ``$TOPIC`` to ``$OUT`` (settings from the environment)."""

from __future__ import annotations

import os

from streamsource.streams import App, Tumbling


def make() -> App:
    env = os.environ
    app = App(
        env["BOOTSTRAP"],
        env["GROUP"],
        state_dir=env["STATE"],
        processing_guarantee=env.get("GUARANTEE", "exactly-once"),
        checkpoint_interval=float(env.get("CHECKPOINT", "0.3")),
        batch_size=500,
        state_backend=env.get("BACKEND", "sqlite"),
    )
    counts = app.stream(app.topic(env["TOPIC"], value=dict)).window(Tumbling(1)).count()
    counts.to(app.topic(env["OUT"], value=dict))
    return app

"""Do kafka-python groups started together converge? With and without the initial delay.

    .venv/bin/python benchmarks/group_convergence.py [--runs 50] [--baseline-runs 20]

kafka-python 3.0.12 has a client race (issue 5's closing note): when a member joins while
the leader's join is in flight, the leader's join loop can exit with its own join task
still running, and that member never applies its assignment: it owns nothing. Kafka's
``group.initial.rebalance.delay.ms`` (3 s by default) makes the first rebalance of an empty
group wait for members starting together, so they all join one generation and the race
has no second rebalance to lose.

Each run starts N consumers (threads, one KafkaConsumer each, ``poll(100 ms)`` loops as a
new user writes them) on a fresh group of a topic with 2N partitions, at the same moment.
A run converges when, within 20 s, every partition is owned by exactly one member and every
member owns 2 (its share), and that still holds half a second later. Two brokers
(``streamsource broker`` child processes) run side by side: the baseline with delay 0, and
the CLI default (3000 ms). The script asserts nothing; it prints one table.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic

from kafka import KafkaConsumer
from streamsource.kafka.broker.process import BrokerProcess

# a member stuck by the client race heartbeats no more: its session (30 s here, longer
# than the window) would end and a new rebalance could repair the group, which must not
# count as converging
SESSION_MS = 30_000
CONVERGE_WITHIN_S = 20.0
HOLD_S = 0.5
SHARE = 2


def run_once(bootstrap: str, topic: str, members: int) -> tuple[bool, float]:
    """One group of ``members`` started together; (converged, seconds until it did)."""
    group = f"probe-{uuid.uuid4().hex[:8]}"
    owned: list[frozenset[int]] = [frozenset()] * members
    stop = threading.Event()
    start = threading.Barrier(members + 1)

    def member(index: int) -> None:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=1_000,
        )
        try:
            start.wait(timeout=30)
            while not stop.is_set():
                consumer.poll(timeout_ms=100)
                owned[index] = frozenset(tp.partition for tp in consumer.assignment())
        finally:
            consumer.close(autocommit=False)

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(members)]
    for t in threads:
        t.start()
    start.wait(timeout=30)
    began = time.monotonic()
    deadline = began + CONVERGE_WITHIN_S
    converged_at: float | None = None
    everything = set(range(members * SHARE))
    while time.monotonic() < deadline:
        snapshot = list(owned)
        good = (
            all(len(p) == SHARE for p in snapshot)
            and set().union(*snapshot) == everything
            and sum(len(p) for p in snapshot) == len(everything)
        )
        if good and converged_at is None:
            converged_at = time.monotonic()
        elif not good:
            converged_at = None
        if converged_at is not None and time.monotonic() - converged_at >= HOLD_S:
            break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    ok = converged_at is not None and time.monotonic() - converged_at >= HOLD_S
    return ok, (converged_at - began) if converged_at is not None else CONVERGE_WITHIN_S


def probe(bootstrap: str, members: int, runs: int) -> tuple[int, float, float]:
    topic = f"converge-{members}-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, members * SHARE, 1)])
    finally:
        admin.close()
    converged = 0
    seconds: list[float] = []
    for _ in range(runs):
        ok, took = run_once(bootstrap, topic, members)
        converged += ok
        if ok:
            seconds.append(took)
    mean = sum(seconds) / len(seconds) if seconds else float("nan")
    return converged, mean, max(seconds, default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per group size, delay 3 s")
    parser.add_argument("--baseline-runs", type=int, default=20, help="runs with delay 0")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5])
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    rows: list[tuple[int, int, int, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="group-convergence-") as tmp:
        work = Path(tmp)
        for delay, runs in ((0, args.baseline_runs), (3000, args.runs)):
            if runs <= 0:
                continue
            name = f"delay-{delay}"
            proc = BrokerProcess(
                work / name, work / f"{name}.log", group_initial_rebalance_delay_ms=delay
            ).start()
            try:
                for members in args.sizes:
                    converged, mean_s, max_s = probe(proc.bootstrap, members, runs)
                    rows.append((delay, members, runs, converged, mean_s, max_s))
            finally:
                proc.terminate()
    print(f"{'initial delay ms':>16} {'members':>7} {'runs':>5} {'converged':>9} {'rate':>6}"
          f" {'s to converge: mean':>19} {'max':>5}")  # fmt: skip
    for delay, members, runs, converged, mean_s, max_s in rows:
        print(f"{delay:>16} {members:>7} {runs:>5} {converged:>9} {converged / runs:>6.0%}"
              f" {mean_s:>19.2f} {max_s:>5.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

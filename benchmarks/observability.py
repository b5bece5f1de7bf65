"""What metrics and traces cost: appends with each switched off and on, beside the append
without the hooks, measured in the same run.

    .venv/bin/python benchmarks/observability.py [--events N] [--rounds R]

Rows are appends of one event per second on a ``memory://`` store (where a hook's cost is
the largest share of an append) and on a SQLite file without fsync
(``durability=normal``). The baseline is ``EventStore._append``: the same append minus the
one check of whether tracing is on. Rounds interleave the variants, and each variant keeps
its best round (each round starting with another one, after a warm-up), so a noisy neighbour slows all of them alike. Ratios near 1.00 for the
"off" rows are the claim "no cost when disabled".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

import streamsource as ss
from streamsource.observability import metrics, tracing


def rate(append: Callable[[str, ss.NewEvent], object], events: int, tag: str) -> float:
    started = time.perf_counter()
    for i in range(events):
        append(f"{tag}-{i % 100}", ss.NewEvent("Ticked", {"n": i}))
    return events / (time.perf_counter() - started)


def measure(url: str, events: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    with ss.open_store(url) as store:
        variants: list[tuple[str, Callable[[], None], Callable[[str, ss.NewEvent], object]]] = [
            ("without hooks (baseline)", _off, lambda s, e: store._append(s, e, ss.ANY)),
            ("metrics and tracing off", _off, store.append),
            ("metrics on", _metrics_on, store.append),
            ("tracing on (SDK, no exporter)", _tracing_on, store.append),
        ]
        for _, switch, append in variants:  # warm-up: caches, the file's first pages
            switch()
            rate(append, events // 10, "warm")
        for round_ in range(rounds):
            shift = round_ % len(variants)  # each round starts with another variant
            for name, switch, append in variants[shift:] + variants[:shift]:
                switch()
                got = rate(append, events, f"r{round_}")
                best[name] = max(best.get(name, 0.0), got)
        _off()
    return best


_provider = TracerProvider()


def _off() -> None:
    metrics.disable_metrics()
    tracing.disable_tracing()


def _metrics_on() -> None:
    tracing.disable_tracing()
    metrics.enable_metrics()


def _tracing_on() -> None:
    metrics.disable_metrics()
    tracing.enable_tracing(_provider)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="appends per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backends = {
            "memory": "memory://",
            "sqlite, no fsync": f"sqlite:///{Path(tmp) / 'bench.db'}?durability=normal",
        }
        print(f"{'appends of one event per second':<36}{'events/s':>12}{'vs baseline':>13}")
        for backend, url in backends.items():
            best = measure(url, args.events, args.rounds)
            base = best["without hooks (baseline)"]
            print(f"-- {backend}")
            for name, value in best.items():
                print(f"   {name:<33}{value:>12,.0f}{value / base:>12.2f}x")


if __name__ == "__main__":
    main()

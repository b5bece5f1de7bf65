"""The reference mall under load: completed orders per second and checkout-to-approved time.

    flock /tmp/streamsource-bench.lock .venv/bin/python benchmarks/mall.py [--duration S] [--clients N] [--rate R] [--postgres]

Starts ``streamsource mall serve`` (all services in one process) on fresh SQLite files (and,
with ``--postgres``, on a throwaway PostgreSQL server), once per transport: ``broker`` (the
default: streamsource's broker started in the same process, its fsync policy the default
``interval``) and ``local`` (``--transport local``: through the stores). The SQLite stores
keep their default ``durability=full`` (every commit fsync'd). For each it sets up customers,
stores and products, then measures, each for ``--duration`` seconds with ``--clients``
shoppers (:mod:`examples.mall.load`):

* ``HTTP round trip``: the baseline, in the same run against the same server: shoppers
  reading a customer (one request, one store read), requests per second and latency;
* ``orders, flat out``: shoppers ordering as fast as they can (each order: about 12 requests,
  a saga of five steps, 17 transactions across 9 stores); completed orders per second;
* ``orders at R/s``: orders started on a fixed schedule; checkout-to-approved p50 and p99.

The issue's targets on a 2-core machine: 100 completed orders/s on SQLite, p99 under 500 ms
at 20 orders/s. ``vs baseline``: the row's p50 latency over the round trip's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from examples.mall.load import Catalogue, Http, Result, run_load, set_up  # noqa: E402

LISTENING = re.compile(r"^mall: .* on (http://\S+)$")


@contextmanager
def mall_server(data_dir: Path, store: str | None, transport: str) -> Iterator[str]:
    args = [sys.executable, "-m", "streamsource", "mall", "serve", "--port", "0"]
    args += ["--data-dir", str(data_dir), "--transport", transport]
    args += ["--store", store] if store else []
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError(f"the mall exited with {process.wait()}")
            if match := LISTENING.match(line.strip()):
                url = match.group(1)
        if url is None:
            raise RuntimeError("the mall did not say where it listens within 60 s")
        threading.Thread(target=process.stderr.read, daemon=True).start()  # drain
        while time.monotonic() < deadline:
            try:
                if Http(url, timeout=2).call("GET", "/openapi.json")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def round_trips(url: str, world: Catalogue, clients: int, duration: float) -> Result:
    result, lock = Result(), threading.Lock()
    until = time.monotonic() + duration

    def client(index: int) -> None:
        http = Http(url)
        customer = world.customers[index % len(world.customers)]
        latencies = []
        while time.monotonic() < until:
            start = time.monotonic()
            http.ok("GET", f"/api/customers/{customer}")
            latencies.append(time.monotonic() - start)
        http.close()
        with lock:
            result.completed += len(latencies)
            result.approved_latencies += latencies

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.monotonic() - start
    return result


def row(backend: str, name: str, r: Result, baseline_p50: float, unit: str) -> None:
    p50, p99 = r.percentile(50) * 1000, r.percentile(99) * 1000
    ratio = p50 / baseline_p50 if baseline_p50 else float("nan")
    failed = f"  {r.failed} FAILED" if r.failed else ""
    print(
        f"{backend:<15}{name:<22}{r.completed_per_second:>10.1f} {unit:<9}"
        f"{p50:>9.0f}{p99:>9.0f}{ratio:>12.1f}{failed}"
    )


def measure(backend: str, store: str | None, transport: str, args: argparse.Namespace) -> None:
    backend = f"{backend}/{transport}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        mall_server(Path(tmp) / "mall", store, transport) as url,
    ):
        world = set_up(url)
        run_load(url, 2, 1.0, world=world)  # warm up: caches, connections
        base = round_trips(url, world, args.clients, args.duration)
        base_p50 = base.percentile(50) * 1000
        row(backend, "HTTP round trip", base, base_p50, "req/s")
        flat = run_load(url, args.clients, args.duration, world=world)
        row(backend, "orders, flat out", flat, base_p50, "orders/s")
        paced = run_load(url, args.clients, args.duration, rate=args.rate, world=world)
        row(backend, f"orders at {args.rate:g}/s", paced, base_p50, "orders/s")
        for error in (flat.errors + paced.errors)[:3]:
            print(f"  error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument(
        "--transport",
        choices=["broker", "local"],
        action="append",
        help="only this transport (repeatable; default: both)",
    )
    args = parser.parse_args()
    transports = args.transport or ["broker", "local"]
    print(f"\n{args.clients} shoppers, {args.duration:g} s per row; latency: checkout to approved")
    print("SQLite stores with durability=full (the default); broker: embedded, fsync=interval")
    print(
        f"{'backend':<15}{'row':<22}{'rate':>10} {'':<9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs baseline':>12}"
    )
    for transport in transports:
        measure("sqlite", None, transport, args)
    if args.postgres:
        from pg_server import PgServer, pg_store_url  # type: ignore[import-not-found]

        server = PgServer.start()
        try:
            for transport in transports:
                measure("postgres", pg_store_url(server.url), transport, args)
        finally:
            server.destroy()


if __name__ == "__main__":
    main()

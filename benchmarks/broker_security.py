"""Produce throughput over SASL_SSL (and SSL) beside PLAINTEXT, one broker, one run.

    .venv/bin/python benchmarks/broker_security.py [--quick] [--repeat N] [--size BYTES]

``streamsource broker`` runs as a child process with three listeners on loopback:
PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-256; a user made with ``streamsource broker users
set``); certificates are made for the run with ``openssl`` in a temporary directory. One
confluent-kafka producer per row sends COUNT values of SIZE bytes (``linger.ms=5``,
acks=1) to a fresh topic and flushes; the rows alternate ``--repeat`` times and each keeps
its best, next to the broker's CPU seconds per million messages over that run. The
PLAINTEXT row is the baseline: the table prints every row as a ratio to it. The
authentication itself happens once per connection, so these rows price TLS; the SCRAM
handshake's cost (8192 PBKDF2 iterations) is a connection-time cost. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import KafkaError, Producer

from streamsource.kafka.broker.process import BrokerProcess

PASSWORD = "bench-password"


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path) -> None:
    openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "1", "-subj", "/CN=bench CA")  # fmt: skip
    openssl(directory, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
            "-subj", "/CN=localhost", "-out", "broker.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(directory, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "broker.pem")  # fmt: skip


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(config: dict[str, str], topic: str, count: int, size: int) -> float:
    """Messages per second for ``count`` values, flush included."""
    producer = Producer(
        {**config, "linger.ms": 5, "acks": 1, "queue.buffering.max.messages": 1_000_000}
    )
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    producer.produce(topic, b"warm-up", on_delivery=on_delivery)  # connect, authenticate
    producer.flush(30)
    value = b"x" * size
    started = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(120) != 0:
        raise SystemExit("messages left undelivered")
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"delivery failed: {failures[0]}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 messages per row")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("needs openssl (Debian package openssl)")
    count = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory(prefix="broker-security-bench-") as tmp:
        work = Path(tmp)
        make_certs(work)
        data_dir = work / "data"
        subprocess.run(
            [sys.executable, "-c", "from streamsource.cli import main; main()", "broker",
             "users", "set", "bench", "--mechanism", "SCRAM-SHA-256", "--data-dir", str(data_dir)],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        proc = BrokerProcess(
            data_dir,
            work / "broker.log",
            listener=["PLAINTEXT://127.0.0.1:0", "SSL://127.0.0.1:0", "SASL_SSL://127.0.0.1:0"],
            tls_cert=work / "broker.pem",
            tls_key=work / "broker.key",
        ).start()
        tls = {"ssl.ca.location": str(work / "ca.pem")}
        rows = {
            "PLAINTEXT": {"bootstrap.servers": proc.bootstrap_for("PLAINTEXT")},
            "SSL": {"bootstrap.servers": proc.bootstrap_for("SSL"), "security.protocol": "SSL",
                    **tls},
            "SASL_SSL (SCRAM-SHA-256)": {
                "bootstrap.servers": proc.bootstrap_for("SASL_SSL"),
                "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "bench", "sasl.password": PASSWORD, **tls,
            },
        }  # fmt: skip
        best: dict[str, tuple[float, float]] = {}
        try:
            for round_ in range(args.repeat):
                for name, config in rows.items():
                    topic = f"bench-{len(best)}-{round_}-{name.split()[0].lower()}"
                    cpu_before = cpu_seconds(proc.pid)
                    rate = produce(config, topic, count, args.size)
                    cpu_per_million = (cpu_seconds(proc.pid) - cpu_before) / (count + 1) * 1e6
                    if name not in best or rate > best[name][0]:
                        best[name] = (rate, cpu_per_million)
        finally:
            proc.terminate()
    base_rate, base_cpu = best["PLAINTEXT"]
    print(f"produce {count:,} x {args.size} B, acks=1, linger.ms=5, best of {args.repeat}")
    print(f"{'listener':<26} {'msg/s':>10} {'vs PLAINTEXT':>13} {'broker CPU s/M':>15} {'vs':>6}")
    for name, (rate, cpu) in best.items():
        print(f"{name:<26} {rate:>10,.0f} {rate / base_rate:>12.2f}x {cpu:>15.1f} "
              f"{cpu / base_cpu:>5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()

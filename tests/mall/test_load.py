"""``streamsource mall load`` against a running mall: shoppers complete orders, none fail, and
it prints what it measured."""

from __future__ import annotations

import http.server
import random
import re
import subprocess
import threading
from pathlib import Path

import pytest
from examples.mall.load import Pacing
from mall_process import STREAMSOURCE, MallProcess

pytestmark = pytest.mark.slow


def test_load_completes_orders(tmp_path: Path) -> None:
    with MallProcess.start(tmp_path / "mall") as mall:
        args = ["mall", "load", "--url", mall.url, "--clients", "2", "--duration", "2"]
        done = subprocess.run([*STREAMSOURCE, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    counts = re.search(r"orders: (\d+) started, (\d+) completed, (\d+) failed", done.stdout)
    assert counts is not None, done.stdout
    started, completed, failed = map(int, counts.groups())
    assert completed == started > 0 and failed == 0
    assert re.search(r"checkout to approved: p50 \d+ ms, p99 \d+ ms", done.stdout)
    # basket, an item, payment, checkout, saga, assign, complete, invoice, pay, order
    requests = re.search(
        r"HTTP requests per order: ([\d.]+) \(([\d.]+) of them polls\)", done.stdout
    )
    assert requests is not None, done.stdout
    assert float(requests[1]) >= 10 + float(requests[2])


def test_pacing_finds_about_three_waits_in_four_done_at_the_first_look() -> None:
    # no mall, no clock: waits of 50-150 ms drawn at random, then of 100-300 ms
    pacing, draw = Pacing(), random.Random(7)
    for low in (0.05, 0.10):
        in_time = 0
        for look in range(3000):
            done = pacing.first("saga") >= draw.uniform(low, 3 * low)
            pacing.looked("saga", done)
            in_time += done and look >= 1000  # once it has adapted
        assert 0.65 < in_time / 2000 < 0.85, (low, in_time)
        assert low < pacing.first("saga") < 3 * low
    assert pacing.first("invoice") == 0.0  # each kind of wait on its own


def test_load_sends_each_request_to_the_process_serving_it(tmp_path: Path) -> None:
    front = ("stores", "customers", "baskets", "payments")
    orders = ("ordering", "cosec", "notifications", "search", "depot")
    with MallProcess.start(tmp_path / "mall", services=front) as first:
        assert first.broker is not None
        with MallProcess.start(
            tmp_path / "mall", services=orders, bootstrap=first.broker
        ) as second:
            args = ["mall", "load", "--url", first.url, "--url", second.url]
            args += ["--clients", "2", "--duration", "2"]
            done = subprocess.run(
                [*STREAMSOURCE, *args], capture_output=True, text=True, timeout=180
            )
    assert done.returncode == 0, done.stderr
    counts = re.search(r"orders: (\d+) started, (\d+) completed, (\d+) failed", done.stdout)
    assert counts is not None, done.stdout
    started, completed, failed = map(int, counts.groups())
    assert completed == started > 0 and failed == 0


def test_load_refuses_a_url_that_is_not_a_mall(tmp_path: Path) -> None:
    # a web server that is no mall: every GET is 404
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with MallProcess.start(tmp_path / "mall", transport="local") as mall:
            other_url = f"http://127.0.0.1:{other.server_address[1]}"
            args = ["mall", "load", "--url", mall.url, "--url", other_url, "--duration", "1"]
            done = subprocess.run(
                [*STREAMSOURCE, *args], capture_output=True, text=True, timeout=60
            )
    finally:
        other.shutdown()
        other.server_close()
    assert done.returncode == 1
    assert f"{other_url} is not a mall: GET /openapi.json gave 404" in done.stderr, done.stderr


def test_serve_logs_requests_only_with_access_log(tmp_path: Path) -> None:
    for options, logged in (((), False), (("--access-log",), True)):
        mall = MallProcess.start(tmp_path / "mall", transport="local", options=options)
        try:
            with mall.client() as client:
                assert client.get("/api/customers/nobody").status_code == 404
        finally:
            mall.stop()
        request_lines = [line for line in mall.output if "GET /api/customers/nobody" in line]
        assert bool(request_lines) == logged, mall.output
        if logged:
            assert "404" in request_lines[0]


def test_load_names_an_unreachable_mall() -> None:
    done = subprocess.run(
        [*STREAMSOURCE, "mall", "load", "--url", "http://127.0.0.1:9", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: http://127.0.0.1:9:"), done.stderr


def test_serve_names_an_unknown_service(tmp_path: Path) -> None:
    done = subprocess.run(
        [*STREAMSOURCE, "mall", "serve", "--data-dir", str(tmp_path), "--services", "depot,shoes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: unknown service(s) shoes; the mall has stores,")


def test_serve_refuses_a_bootstrap_without_the_broker_transport(tmp_path: Path) -> None:
    args = ["mall", "serve", "--data-dir", str(tmp_path), "--transport", "local"]
    done = subprocess.run(
        [*STREAMSOURCE, *args, "--bootstrap", "127.0.0.1:9092"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: --bootstrap names a broker"), done.stderr

"""The broker ``mall serve`` starts is a child process tied to it: after a clean stop and
after ``kill -9`` of the mall no broker is left running, and a mall restarted at once on the
same data directory and broker port gets its own broker on the same data (an order checked
out before the kill completes); a broker process killed with ``kill -9`` is started again by
its mall, and an order checked out meanwhile completes."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from mall_process import MallProcess, eventually
from shopping import Shopper

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def ended(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_broker_process_ends_with_its_mall(tmp_path: Path) -> None:
    mall = MallProcess.start(tmp_path)
    try:
        (broker,) = children(mall.process.pid)
        assert mall.broker is not None
    finally:
        mall.stop()  # SIGTERM: a clean shutdown (uvicorn then exits by that signal)
    eventually(lambda: ended(broker), "the broker process to end with its mall")


def test_a_mall_killed_with_9_leaves_no_broker_and_restarts_on_its_data(tmp_path: Path) -> None:
    port = free_port()
    options = ["--broker-port", str(port)]
    mall = MallProcess.start(tmp_path, options=options)
    (broker,) = children(mall.process.pid)
    with mall.client() as client:
        shop = Shopper(client)
        customer = shop.customer()
        _, product = shop.store_with_product(price=500)
        basket = shop.basket(customer, product, quantity=1)
        shop.checkout(basket, shop.payment(customer, 500))
    mall.kill()
    eventually(lambda: ended(broker), "the broker process to end after kill -9 of its mall")

    with MallProcess.start(tmp_path, options=options) as again, again.client() as client:
        assert again.broker == f"127.0.0.1:{port}"
        shop = Shopper(client)
        order = shop.order_when(basket, "approved", seconds=60)
        shop.ship(order["shoppingId"])
        shop.pay_invoice(basket)
        assert shop.order_when(basket, "completed", seconds=60)["status"] == "completed"


def test_a_broker_process_killed_with_9_is_started_again(tmp_path: Path) -> None:
    with MallProcess.start(tmp_path) as mall, mall.client() as client:
        (broker,) = children(mall.process.pid)
        shop = Shopper(client)
        customer = shop.customer()
        _, product = shop.store_with_product(price=500)
        basket = shop.basket(customer, product, quantity=1)
        os.kill(broker, signal.SIGKILL)
        shop.checkout(basket, shop.payment(customer, 500))  # its messages wait in the outboxes
        eventually(
            lambda: [p for p in children(mall.process.pid) if p != broker and not ended(p)],
            "a new broker process",
        )
        order = shop.order_when(basket, "approved", seconds=60)
        shop.ship(order["shoppingId"])
        shop.pay_invoice(basket)
        assert shop.order_when(basket, "completed", seconds=60)["status"] == "completed"
    assert any("starting it again" in line for line in mall.output)

"""A store filled by the demo's event-sourcing sections, and a console process over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.bank.app import Account

import streamsource as ss
from streamsource.cli.demo import STEPS, PlainTrail, run_steps

from .console_process import console_process


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a store the demo's bank, pricing and concurrency sections filled."""
    directory = tmp_path_factory.mktemp("demo")
    url = run_steps(directory, PlainTrail(), STEPS)
    with ss.open_store(url) as store:
        fill(store)
    return url


PAGED_STREAMS = 120
BIG_STREAM_EVENTS = 130


def fill(store: ss.EventStore) -> None:
    """What the demo lacks for paging and links: many streams, a long stream, an account
    with a known history, and an event caused by another."""
    for n in range(PAGED_STREAMS):
        store.append(f"paging-{n:03}", [ss.NewEvent("Paged", {"n": n})])
    store.append("big-1", [ss.NewEvent("Counted", {"n": n}) for n in range(BIG_STREAM_EVENTS)])
    accounts = ss.Repository(store, Account)
    account = accounts.create("tt")
    account.open("Grace")
    accounts.save(account)
    for command in (lambda a: a.deposit(100), lambda a: a.deposit(50), lambda a: a.withdraw(30)):
        accounts.update("tt", command)  # one save each: four distinct recording times
    store.append("order-9", [ss.NewEvent("OrderPlaced", {"total": 42})])
    placed = next(store.read_stream("order-9"))
    store.append(
        "invoice-9",
        [
            ss.NewEvent(
                "InvoiceIssued", {"total": 42}, metadata=ss.Causation.from_event(placed).metadata()
            )
        ],
    )


@pytest.fixture(scope="module")
def console_url(demo_store: str) -> Iterator[str]:
    with console_process(
        ["--store", demo_store, "--aggregate", "examples.bank.app:Account"]
    ) as url:
        yield url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a browser test saves its screenshots."""
    path = tmp_path / "screenshots"
    path.mkdir()
    return path

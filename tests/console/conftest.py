"""A store filled by the demo's event-sourcing sections, and a console process over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.bank.app import Account

import streamsource as ss
from streamsource.cli.demo import STEPS, PlainTrail, run_steps
from streamsource.eventstore.projections import ProjectionRunner

from .browser import browser, page, page_errors  # noqa: F401  (fixtures)
from .console_app import projections
from .console_process import console_process, run_cli


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
    fill_admin(store)
    store.append(
        "invoice-9",
        [
            ss.NewEvent(
                "InvoiceIssued", {"total": 42}, metadata=ss.Causation.from_event(placed).metadata()
            )
        ],
    )


def fill_admin(store: ss.EventStore) -> None:
    """A persistent subscription group with parked and in-flight messages, and projections
    run once: the bank's balances caught up, order totals stopped by a poisoned order."""
    store.append("order-8", [ss.NewEvent("OrderPoisoned", {"total": 1})])
    with ss.PersistentSubscription(
        store, "billing", category="paging", retry_delay=3600, batch_size=4
    ) as sub:
        messages = sub.fetch(4)
        sub.nack(messages[0], ValueError("card declined"), park=True)
        sub.nack(messages[1], "address unknown", park=True)
        sub.ack(messages[2])
        sub.nack(messages[3], "bank timed out")  # in flight, retried in an hour
        assert sub.fetch(1)  # in flight, held by this consumer
    with ProjectionRunner(store, projections) as runner, pytest.raises(ss.ProjectionFailed):
        runner.run_until_caught_up()


@pytest.fixture(scope="module")
def console_url(demo_store: str) -> Iterator[str]:
    args = ["--store", demo_store, "--aggregate", "examples.bank.app:Account"]
    with console_process([*args, "--projections", "tests.console.console_app:projections"]) as url:
        yield url


PASSWORDS = {"ada": "admin-password-1", "vic": "viewer-password-1"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.json"
    for name, role in (("ada", "admin"), ("vic", "viewer")):
        result = run_cli(
            [
                "console",
                "users",
                "--file",
                str(path),
                "set",
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            stdin=PASSWORDS[name] + "\n",
        )
        assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def secured_url(demo_store: str, users_file: Path) -> Iterator[str]:
    with console_process(
        [
            "--store",
            demo_store,
            "--auth",
            str(users_file),
            "--mask-values",
            "--aggregate",
            "examples.bank.app:Account",
        ]
    ) as url:
        yield url


@pytest.fixture(scope="module")
def kafka_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(store URL, bootstrap): every demo section run, its broker data served again by a
    broker process, filled further by :mod:`kafka_fill`, with a live group member."""
    from streamsource.cli.demo import all_steps
    from streamsource.kafka.broker.process import BrokerProcess

    from . import kafka_fill

    directory = tmp_path_factory.mktemp("kafka-demo")
    url = run_steps(directory, PlainTrail(), all_steps())
    broker = BrokerProcess(
        directory / "broker",
        directory / "broker.log",
        group_initial_rebalance_delay_ms=0,
        partitions=2,
    ).start()
    try:
        kafka_fill.fill(broker.bootstrap)
        with kafka_fill.live_member(broker.bootstrap):
            yield url, broker.bootstrap
    finally:
        if broker.alive:
            broker.terminate()


@pytest.fixture(scope="module")
def kafka_console(kafka_demo: tuple[str, str], users_file: Path) -> Iterator[str]:
    """A console over the Kafka demo, with users (ada: admin, vic: viewer) and masking."""
    store, bootstrap = kafka_demo
    args = ["--store", store, "--bootstrap", bootstrap, "--auth", str(users_file)]
    with console_process([*args, "--mask-values"]) as url:
        yield url


def login(base_url: str, name: str, **client: object) -> tuple[httpx.Client, str]:
    session = httpx.Client(base_url=base_url, timeout=10, **client)  # type: ignore[arg-type]
    response = session.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text
    return session, response.json()["csrf_token"]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a browser test saves its screenshots."""
    path = tmp_path / "screenshots"
    path.mkdir()
    return path

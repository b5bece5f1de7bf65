"""``streamsource sagas list|show|resume|abort`` against the store of a running service."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner, Result

from streamsource.cli import cli
from streamsource.messaging import Context, LocalTransport, Refused
from streamsource.sagas import SagaEngine

from .conftest import Clock
from .mall import PlaceOrder, orders_service, payments_service, rows, stock_service


def sagas_cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["sagas", "--store", url, *args])


def one_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and fragment in line, line


def test_an_operator_finds_a_stuck_saga_and_resumes_it(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], clock: Clock
) -> None:
    broken = threading.Event()
    broken.set()

    def warehouse_api(ctx: Context, command: Any) -> None:
        if broken.is_set():
            raise Refused("warehouse API down")

    url = store_url_factory()
    orders = orders_service(open_store(url))
    engine = SagaEngine(orders, [PlaceOrder], clock=clock)
    stock = stock_service(open_store(), on_release=warehouse_api)
    transport = LocalTransport([orders, stock, payments_service(open_store())])
    done = engine.start(PlaceOrder, "o-ok", {"order": "o-ok", "amount": 5, "quantity": 1})
    saga_id = engine.start(PlaceOrder, "o-1", {"order": "o-1", "amount": 500, "quantity": 1})
    transport.drain()
    while engine.load(saga_id).status != "stuck":
        clock.advance(60)
        assert engine.fire_due() == 1
        transport.drain()

    listed = sagas_cli(url, "list", "--status", "stuck", "--json")
    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    summary = json.loads(line)
    assert (summary["saga_id"], summary["key"], summary["step"]) == (saga_id, "o-1", "reserve")
    assert "warehouse API down" in summary["reason"]
    everything = sagas_cli(url, "list").stdout
    assert done in everything and "completed" in everything

    shown = sagas_cli(url, "show", saga_id)
    assert shown.exit_code == 0, shown.output
    assert "PlaceOrder for o-1, stuck" in shown.stdout
    assert "step refused [charge]: card limit is 100, 500 asked" in shown.stdout
    assert shown.stdout.count("compensation sent [reserve]") == PlaceOrder.compensation_attempts

    one_error(sagas_cli(url, "resume", done), 1, "is completed: only a stuck saga resumes")
    broken.clear()
    resumed = sagas_cli(url, "resume", saga_id)
    assert resumed.exit_code == 0 and "resume of saga" in resumed.stdout
    assert engine.load(saga_id).status == "stuck"  # until its service carries it out
    assert engine.fire_due() == 1
    transport.drain()
    assert engine.load(saga_id).status == "compensated"
    assert rows(stock.store, "stock")["o-1"] == "released"
    one_error(sagas_cli(url, "abort", saga_id), 1, "is compensated: nothing to abort")


def test_abort_of_a_running_saga_compensates_it(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], clock: Clock
) -> None:
    url = store_url_factory()
    orders = orders_service(open_store(url))
    engine = SagaEngine(orders, [PlaceOrder], clock=clock)
    stock = stock_service(open_store())
    payments = payments_service(open_store())
    saga_id = engine.start(PlaceOrder, "o-1", {"order": "o-1", "amount": 5, "quantity": 1})
    LocalTransport([orders, stock], name="no-payments").drain()  # charge never answered
    aborted = sagas_cli(url, "abort", saga_id, "--reason", "customer called")
    assert aborted.exit_code == 0, aborted.output
    assert engine.fire_due() == 1
    LocalTransport([orders, stock, payments]).drain()
    state = engine.load(saga_id)
    assert state.status == "compensated" and state.reason == "customer called"
    assert rows(stock.store, "stock") == {"o-1": "released"}
    assert rows(payments.store, "payments") == {"o-1": "refunded"}  # the charge may have acted


def test_unknown_sagas_and_missing_stores_are_one_line_errors(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], tmp_path: Any
) -> None:
    url = store_url_factory()
    SagaEngine(orders_service(open_store(url)), [PlaceOrder])
    one_error(sagas_cli(url, "show", "nope"), 1, "no saga with id 'nope'")
    one_error(sagas_cli(url, "resume", "nope"), 1, "no saga with id 'nope'")
    one_error(sagas_cli(f"sqlite:///{tmp_path}/absent.db", "list"), 1, "no store at")
    assert sagas_cli(url, "list").stdout == ""


def test_a_malformed_operator_request_is_dropped_and_the_engine_goes_on(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], clock: Clock
) -> None:
    url = store_url_factory()
    orders = orders_service(open_store(url))
    engine = SagaEngine(orders, [PlaceOrder], clock=clock)
    saga_id = engine.start(PlaceOrder, "o-1", {"order": "o-1", "amount": 5, "quantity": 1})
    with orders.store.transaction() as tx:  # a row written by hand, or by a broken tool
        engine.rows.schedule_deadline(tx, engine.owner, "bad", saga_id, 0.0, "{not json")
    assert engine.fire_due() == 0
    assert engine.load(saga_id).status == "running"
    assert engine.next_due() == clock.now + 10  # only the reservation's timeout is left


def test_a_store_where_no_saga_ran_lists_nothing(store_url_factory: Callable[[], str]) -> None:
    import streamsource as ss

    url = store_url_factory()
    with ss.open_store(url) as store:
        store.append("account-1", [ss.NewEvent("Opened", {})])
    listed = sagas_cli(url, "list")
    assert (listed.exit_code, listed.stdout) == (0, "")
    one_error(sagas_cli(url, "show", "s-1"), 1, "no saga with id 's-1'")
    one_error(sagas_cli(url, "abort", "s-1"), 1, "no saga with id 's-1'")

"""Dead letters by CLI: a parked message is listed with its error, replayed once to the
service (applied, answered), and refused a second replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

import streamsource as ss
from messaging.shop import Charge, answers, orders_service, payments_service
from streamsource.bridge.backoff import Backoff
from streamsource.cli import cli
from streamsource.messaging import Context, LocalTransport, TransientFault


def _cli(url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["messages", "--store", url, "dead-letters", *args])


def test_a_parked_command_is_listed_replayed_once_and_applied(
    store_url_factory: Callable[[], str], open_store: Callable[[], Any]
) -> None:
    ledger_up = [False]

    def needs_ledger(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            if not ledger_up[0]:
                raise TransientFault("ledger unreachable")
            return charge(ctx, command)

        return handler

    payments_url = store_url_factory()
    with ss.open_store(payments_url) as payments_store:
        orders = orders_service(open_store())
        payments = payments_service(
            payments_store, needs_ledger, max_attempts=2, backoff=Backoff(0.001, 0.002)
        )
        transport = LocalTransport([orders, payments])
        sent = orders.send(Charge("acc-1", 30, "EUR"), to="payments")
        transport.drain()

        listed = _cli(payments_url, "list", "--json")
        assert listed.exit_code == 0, listed.output
        [letter] = [json.loads(line) for line in listed.output.splitlines()]
        assert letter["message_id"] == sent.message_id
        assert (letter["service"], letter["name"]) == ("payments", "Charge")
        assert (letter["error"], letter["attempts"]) == ("ledger unreachable", 2)
        assert letter["channel"] == "shop.payments.commands"
        assert letter["replayed_as"] is None

        ledger_up[0] = True
        replayed = _cli(payments_url, "replay", sent.message_id)
        assert replayed.exit_code == 0, replayed.output
        transport.drain()
        [debited] = payments_store.read_stream("account-acc-1")
        assert debited.correlation_id == sent.correlation_id
        assert sorted(row[3] for row in answers(orders.store)) == [
            "Charged", "streamsource.Failure"]  # fmt: skip

        again = _cli(payments_url, "replay", letter["id"])
        assert again.exit_code != 0
        assert "AlreadyReplayed" in again.output
        assert _cli(payments_url, "replay", "--all").output == ""  # nothing left to replay
        text = _cli(payments_url, "list", "--service", "payments").output
        assert "replayed as" in text and "ledger unreachable" in text
        transport.drain()
        assert len(list(payments_store.read_stream("account-acc-1"))) == 1


def test_replay_names_what_is_wrong(store_url_factory: Callable[[], str]) -> None:
    url = store_url_factory()
    with ss.open_store(url) as store:
        payments_service(store)
    unknown = _cli(url, "replay", "01a243ca-31db-75be-8adb-52bfaad0a8ad")
    assert unknown.exit_code != 0 and "no dead letter" in unknown.output
    assert "not a message id" in _cli(url, "replay", "nope").output
    assert "not both" in _cli(url, "replay").output

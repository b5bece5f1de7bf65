"""Stateless dataflows on a real broker: map, filter, flat_map, branch, merge, update, key_by
with a repartition topic; at-least-once offsets committed after the outputs are delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from streams_support import Reader, create_topic, produce, read_all

from streamsource.streams import App, BadRecord


class Payment(msgspec.Struct):
    account: str
    amount: int


def test_filter_map_flat_map_to_a_topic(broker: Any, tmp_path: Path, run_app: Any) -> None:
    create_topic(broker.bootstrap, "payments", 3)
    payments: list[tuple[str | None, Any, int | None]] = [
        (f"a{i % 7}", {"account": f"a{i % 7}", "amount": i - 50}, None) for i in range(300)
    ]
    produce(broker.bootstrap, "payments", payments)

    app = App(broker.bootstrap, "stateless", state_dir=tmp_path, checkpoint_interval=0.2)
    seen: list[Payment] = []
    (
        app.stream(app.topic("payments", value=Payment))
        .filter(lambda p: p.amount > 0)
        .update(seen.append)
        .flat_map(lambda p: [p, Payment(p.account, -p.amount)] if p.amount % 10 == 0 else [p])
        .map(lambda p: {"account": p.account, "cents": p.amount * 100})
        .to(app.topic("cents", value=dict))
    )
    running = run_app(app)
    expected: list[dict[str, Any]] = []
    for i in range(300):
        amount = i - 50
        if amount > 0:
            expected.append({"account": f"a{i % 7}", "cents": amount * 100})
            if amount % 10 == 0:
                expected.append({"account": f"a{i % 7}", "cents": -amount * 100})
    reader = Reader(broker.bootstrap, "cents")
    reader.until(lambda got: len(got) >= len(expected), f"{len(expected)} outputs")
    running.stop()
    got = read_all(broker.bootstrap, "cents")
    assert sorted(v["cents"] for _k, v in got) == sorted(e["cents"] for e in expected)
    # per key, order is kept (a key's records share a partition)
    for account in {e["account"] for e in expected}:
        assert [v for k, v in got if k == account] == [
            e for e in expected if e["account"] == account
        ]
    assert len(seen) == 249

    # the committed offsets cover everything: a restart processes nothing again
    again = App(broker.bootstrap, "stateless", state_dir=tmp_path, checkpoint_interval=0.2)
    again.stream(app.topic("payments", value=Payment)).to(app.topic("copy", value=Payment))
    produce(broker.bootstrap, "payments", [("a1", {"account": "a1", "amount": 5}, None)])
    running = run_app(again)
    Reader(broker.bootstrap, "copy").until(lambda got: len(got) >= 1, "the new payment")
    running.stop()
    assert read_all(broker.bootstrap, "copy") == [("a1", {"account": "a1", "amount": 5})]


def test_branch_merge_and_repartition(broker: Any, tmp_path: Path, run_app: Any) -> None:
    create_topic(broker.bootstrap, "orders", 2)
    orders = [
        (f"o{i}", {"order": f"o{i}", "customer": f"c{i % 5}", "total": i}, None) for i in range(100)
    ]
    produce(broker.bootstrap, "orders", orders)

    app = App(broker.bootstrap, "routing", state_dir=tmp_path, checkpoint_interval=0.2)
    stream = app.stream(app.topic("orders", value=dict))
    small, large, rest = stream.branch(lambda o: o["total"] < 30, lambda o: o["total"] < 60)
    small.map(lambda o: {**o, "size": "small"}).merge(
        large.map(lambda o: {**o, "size": "large"})
    ).to(app.topic("sized", value=dict))
    by_customer = rest.key_by(lambda o: o["customer"], name="customer")
    by_customer.to(app.topic("big-by-customer", value=dict))
    running = run_app(app)
    Reader(broker.bootstrap, "big-by-customer").until(lambda got: len(got) >= 40, "40 big orders")
    Reader(broker.bootstrap, "sized").until(lambda got: len(got) >= 60, "60 sized orders")
    running.stop()

    sized = read_all(broker.bootstrap, "sized")
    assert sorted(v["order"] for _k, v in sized) == sorted(f"o{i}" for i in range(60))
    assert all((v["size"] == "small") == (v["total"] < 30) for _k, v in sized)
    big = read_all(broker.bootstrap, "big-by-customer")
    assert sorted(v["total"] for _k, v in big) == list(range(60, 100))
    assert all(k == v["customer"] for k, v in big)  # re-keyed
    # the repartition topic exists, named after the group, and carried the re-keyed records
    repartitioned = read_all(broker.bootstrap, "routing-repartition-customer")
    assert sorted(v["total"] for _k, v in repartitioned) == list(range(60, 100))


def test_a_record_that_is_not_its_type_stops_the_app_naming_it(
    broker: Any, tmp_path: Path, run_app: Any
) -> None:
    create_topic(broker.bootstrap, "typed", 1)
    produce(
        broker.bootstrap,
        "typed",
        [("a1", {"account": "a1", "amount": 1}, None), ("a1", {"account": "a1"}, None)],
    )
    app = App(broker.bootstrap, "typed", state_dir=tmp_path, checkpoint_interval=0.2)
    app.stream(app.topic("typed", value=Payment)).to(app.topic("typed-copy", value=Payment))
    running = run_app(app)
    running.thread.join(60)
    with pytest.raises(
        BadRecord, match=r"typed\[0\]@1: not a JSON Payment: Object missing required field `amount`"
    ):
        running.stop()
    # nothing of the failed batch was committed: a fixed app starts again at offset 0
    assert read_all(broker.bootstrap, "typed-copy") == []

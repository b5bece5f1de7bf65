"""Mistakes in a dataflow are refused when it is declared (or when it starts), naming what
is wrong; serializers are pluggable and typed values validated."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsource as ss
from streamsource.streams import (
    App,
    BadRecord,
    DataflowError,
    Hopping,
    Json,
    Session,
    Text,
    Tumbling,
    aggregate,
)


def _app(tmp_path: Path, **options: Any) -> App:
    return App("127.0.0.1:1", "g", state_dir=tmp_path, **options)


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DataflowError, match="processing_guarantee must be one of"):
        _app(tmp_path, processing_guarantee="exactly_once")
    with pytest.raises(DataflowError, match="batch_size"):
        _app(tmp_path, batch_size=0)
    with pytest.raises(DataflowError, match="checkpoint_interval"):
        _app(tmp_path, checkpoint_interval=0)


def test_windows_and_stores_are_checked(tmp_path: Path) -> None:
    app = _app(tmp_path)
    stream = app.stream("in")
    with pytest.raises(DataflowError, match="multiple of its step"):
        stream.window(Hopping(10, 3)).count()
    with pytest.raises(DataflowError, match="size must be at least 1 ms"):
        stream.window(Tumbling(0)).count()
    with pytest.raises(DataflowError, match="emit must be 'close' or 'update'"):
        stream.window(Tumbling(1), emit="final").count()
    with pytest.raises(
        DataflowError, match=r"session windows merge states: give aggregate\(..., merge=...\)"
    ):
        stream.window(Session(5)).aggregate(aggregate(list, lambda s, v: [*s, v]))
    stream.count(name="totals")
    with pytest.raises(DataflowError, match="'totals' is used twice"):
        stream.sum(name="totals")
    with pytest.raises(DataflowError, match="how must be 'inner' or 'left'"):
        stream.join(app.table("customers"), lambda v, row: v, how="outer")


def test_the_event_store_source_is_at_least_once(tmp_path: Path) -> None:
    with ss.open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        app = _app(tmp_path, processing_guarantee="exactly-once")
        app.from_store(store).to("out")
        with pytest.raises(DataflowError, match="event-store sources are at-least-once"):
            app.run()


class Order(msgspec.Struct):
    id: int
    total: float


@dataclasses.dataclass
class Refund:
    order: int
    amount: float


def test_serializers() -> None:
    orders = Json(Order)
    assert orders.loads(orders.dumps(Order(1, 2.5))) == Order(1, 2.5)
    with pytest.raises(
        BadRecord, match=r"not a JSON Order: Expected `int`, got `str` - at `\$.id`"
    ):
        orders.loads(b'{"id": "x", "total": 1}')
    refunds = Json(Refund)
    assert refunds.loads(b'{"order": 3, "amount": 1.5}') == Refund(3, 1.5)
    assert Json().loads(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(BadRecord, match="not UTF-8"):
        Text().loads(b"\xff")

    class Upper:  # any object with dumps/loads is a serializer
        def dumps(self, value: Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode().lower()

    app = App("127.0.0.1:1", "g")
    topic = app.topic("t", key=Upper(), value=Refund)
    assert topic.key.dumps("abc") == b"ABC" and topic.value.loads(
        b'{"order":1,"amount":2}'
    ) == Refund(1, 2)

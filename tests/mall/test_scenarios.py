"""The mall end to end: scenarios through the HTTP API of a running ``streamsource mall
serve`` (all services in one process), on SQLite files and on PostgreSQL, with the messages
through the broker it starts (the default) or through the stores (``--transport local``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import scenarios
from mall_process import MallProcess
from shopping import Shopper

from pg_server import pg_store_url

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=["sqlite", "sqlite+local", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shopper]:
    """One mall per backend and transport for all scenarios (each uses its own customers
    and stores)."""
    store = None
    if request.param == "postgres":
        store = pg_store_url(request.getfixturevalue("pg_server_url"))
    transport = "local" if request.param.endswith("+local") else None
    data_dir = tmp_path_factory.mktemp("mall")
    with (
        MallProcess.start(data_dir, store=store, transport=transport) as mall,
        mall.client() as client,
    ):
        # the default runs on the broker it started; --transport local starts none
        assert (mall.broker is None) == (transport == "local")
        yield Shopper(client)


@pytest.mark.parametrize(
    "scenario",
    [
        scenarios.happy_path,
        scenarios.disabled_customer,
        scenarios.payment_below_total,
        scenarios.cancel_before_ready,
        scenarios.cancel_refused_once_ready,
        scenarios.price_change_in_basket,
    ],
    ids=lambda s: s.__name__,
)
def test_scenario(shop: Shopper, scenario: object) -> None:
    scenario(shop)  # type: ignore[operator]

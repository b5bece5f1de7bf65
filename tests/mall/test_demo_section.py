"""The mall's section of ``streamsource demo``: a completed order and a compensated one,
printed as tables, on real SQLite files and the mall's HTTP API in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamsource.cli.demo import STEPS, PlainTrail, run_steps

pytestmark = pytest.mark.slow


def test_the_mall_section_prints_both_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mall = [step for step in STEPS if step.title == "The reference mall"]
    run_steps(tmp_path, PlainTrail(), mall)
    out = capsys.readouterr().out
    assert "basket to completed" in out
    for line in ("bot-7 shops the list and completes it", "the invoice is paid"):
        assert line in out
    assert out.count("order_completed") == 1
    compensation = out[out.index("the saga compensates") :]
    sent = [
        line.split()[3]
        for line in compensation.splitlines()
        if " command sent " in line or " compensation sent " in line
    ]
    assert sent == [
        "CheckOrderPending",
        "AuthorizeCustomer",
        "CreateShoppingList",
        "ConfirmPayment",
        "CancelShoppingList",
        "RejectOrder",
    ]
    assert "step refused" in compensation and "compensated" in compensation
    assert "below the order total 1200" in compensation
    assert sorted(p.name for p in tmp_path.glob("mall-*/*.db"))[:2] == ["baskets.db", "cosec.db"]

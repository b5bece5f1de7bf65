"""A person logging in, rebuilding a projection and replaying parked messages in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .browser import TIMEOUT_MS, open_page
from .conftest import PASSWORDS

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-admin-browser")

expect.set_options(timeout=TIMEOUT_MS)


def test_projections_page_shows_errors_and_rebuilds_with_progress(page: Page, shots: Path) -> None:
    page.goto("/projections")
    orders = page.locator("#projections tr", has_text="order_totals")
    expect(orders.locator("td.error")).to_contain_text("cannot total a poisoned order")
    balances = page.locator("#projections tr", has_text="account_balances")
    expect(balances.locator("td.lag")).to_have_text("0")
    page.wait_for_load_state("load")
    balances.get_by_role("button", name="Rebuild").click()
    done = page.locator("#projections tr", has_text="account_balances").locator(".done")
    expect(done).to_contain_text("rebuilt: generation")
    page.screenshot(path=shots / "projections.png", full_page=True)


def test_subscription_page_shows_parked_errors_and_replays(page: Page, shots: Path) -> None:
    page.goto("/subscriptions")
    page.get_by_role("link", name="billing").click()
    expect(page.locator("h1")).to_contain_text("billing")
    expect(page.locator("#in-flight")).to_contain_text("bank timed out")
    parked = page.locator("#parked")
    expect(parked).to_contain_text("ValueError: card declined")
    page.screenshot(path=shots / "subscription.png", full_page=True)
    replay = page.get_by_role("button", name="Replay parked messages")
    if replay.count():  # the API test may have replayed them already
        page.wait_for_load_state("load")
        replay.click()
        expect(page.get_by_role("status")).to_contain_text("Replayed")
        expect(page.locator("#waiting")).to_have_text("0 waiting for replay")
    page.screenshot(path=shots / "replayed.png", full_page=True)


def test_login_roles_and_masking(
    browser: Any, secured_url: str, page_errors: list[str], shots: Path
) -> None:
    viewer = open_page(browser, secured_url, page_errors)
    viewer.goto("/stream?name=account-tt")
    expect(viewer).to_have_url(f"{secured_url}/login?next=%2Fstream%3Fname%3Daccount-tt")
    viewer.get_by_label("User").fill("vic")
    viewer.get_by_label("Password").fill("not-the-password")
    viewer.get_by_role("button", name="Log in").click()
    expect(viewer.get_by_role("alert")).to_contain_text("Unknown user or wrong password")
    viewer.get_by_label("User").fill("vic")
    viewer.get_by_label("Password").fill(PASSWORDS["vic"])
    viewer.get_by_role("button", name="Log in").click()
    expect(viewer.locator("h1")).to_contain_text("account-tt")
    expect(viewer.locator("header .who")).to_contain_text("vic (viewer), values masked")
    expect(viewer.locator("#events pre.masked").first).to_contain_text("values are masked")
    expect(viewer.locator("#events")).not_to_contain_text('"amount"')
    viewer.screenshot(path=shots / "viewer-masked.png", full_page=True)
    viewer.goto("/subscription?group=billing")
    expect(viewer.locator("h1")).to_contain_text("billing")
    expect(viewer.get_by_role("button", name="Replay parked messages")).to_have_count(0)
    viewer.wait_for_load_state("load")
    viewer.get_by_role("button", name="Log out").click()
    expect(viewer).to_have_url(f"{secured_url}/login")
    viewer.context.close()
    page_errors.remove(
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    )

    admin = open_page(browser, secured_url, page_errors)
    admin.goto("/login")
    admin.get_by_label("User").fill("ada")
    admin.get_by_label("Password").fill(PASSWORDS["ada"])
    admin.get_by_role("button", name="Log in").click()
    expect(admin.locator("h1")).to_have_text("Streams")
    admin.goto("/stream?name=account-tt")
    expect(admin.locator("#events")).to_contain_text('"amount": 30')
    admin.context.close()
    assert page_errors == []

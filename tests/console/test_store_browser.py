"""A person using the store pages in a real browser (Debian's Chromium, via Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import streamsource as ss

from .browser import TIMEOUT_MS

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-store-browser")

expect.set_options(timeout=TIMEOUT_MS)


def test_streams_filter_stream_and_time_travel(page: Page, shots: Path) -> None:
    page.goto("/streams")
    expect(page.locator("h1")).to_have_text("Streams")
    expect(page.locator("#streams")).to_contain_text("paging-000")
    page.get_by_label("Category").fill("account")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#streams tbody tr")).not_to_contain_text(["paging"])
    row = page.locator("#streams tbody tr", has_text="account-tt")
    expect(row).to_contain_text("4")  # events
    page.screenshot(path=shots / "streams.png", full_page=True)

    row.get_by_role("link", name="account-tt").click()
    expect(page.locator("h1")).to_contain_text("account-tt")
    types = page.locator("#events td.type")
    expect(types).to_have_text(["Withdrawn", "Deposited", "Deposited", "AccountOpened"])
    expect(page.locator("#events")).to_contain_text('"amount": 30')
    page.screenshot(path=shots / "stream.png", full_page=True)

    page.get_by_role("link", name="Time travel (with aggregate state)").click()
    expect(page.locator("#aggregate-state")).to_contain_text('"balance": 120')
    page.wait_for_load_state("load")  # htmx is listening
    page.locator("#version-slider").fill("1")
    expect(page.locator("#aggregate-state")).to_contain_text('"balance": 100')
    expect(page.locator("#version-shown")).to_have_text("1")
    expect(page.locator("#events td.type")).to_have_text(["Deposited", "AccountOpened"])
    page.screenshot(path=shots / "time-travel.png", full_page=True)


def test_global_log_shows_new_events_live(page: Page, demo_store: str, shots: Path) -> None:
    page.goto("/log")
    expect(page.locator("#live-status")).to_contain_text("live")
    expect(page.locator("#log tbody tr").first).to_be_visible()
    with ss.open_store(demo_store) as store:
        store.append("browser-1", [ss.NewEvent("SeenLive", {"by": "a person"})])
    arrived = page.locator("#log tbody tr", has_text="SeenLive")
    expect(arrived).to_be_visible()
    expect(page.locator("#log tbody tr").first).to_contain_text("browser-1")
    page.screenshot(path=shots / "live-log.png", full_page=True)

    page.get_by_label("Type").fill("SeenLive")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#log td.type")).to_have_text(["SeenLive"])


def test_following_a_correlation_and_a_cause(page: Page, shots: Path) -> None:
    page.goto("/stream?name=invoice-9")
    page.get_by_role("link", name="correlation").click()
    expect(page.locator("h1")).to_contain_text("Correlation")
    expect(page.locator("#events td.type")).to_have_text(["OrderPlaced", "InvoiceIssued"])
    page.screenshot(path=shots / "correlation.png", full_page=True)
    page.goto("/stream?name=invoice-9")
    page.get_by_role("link", name="cause").click()
    expect(page.locator("#events td.type")).to_have_text(["OrderPlaced"])
    expect(page.locator("main")).to_contain_text("Found at position")


def test_bad_input_shows_the_reason(page: Page, page_errors: list[str]) -> None:
    response = page.goto("/time-travel?name=account-tt&time=yesterday")
    assert response is not None and response.status == 400
    expect(page.locator(".error")).to_contain_text("invalid time 'yesterday'")
    assert page_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page_errors.clear()

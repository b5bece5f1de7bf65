"""A person browsing topics and messages, reading a group's lag and resetting its offsets,
in Chromium, against a broker process that served the demo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .browser import TIMEOUT_MS, open_page
from .conftest import PASSWORDS
from .kafka_fill import ORDERS, PARTITIONS

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-kafka-browser")

expect.set_options(timeout=TIMEOUT_MS)


def log_in(browser: Any, url: str, errors: list[str], name: str) -> Page:
    page: Page = open_page(browser, url, errors)
    page.goto("/login?next=/kafka/topics")
    page.get_by_label("User").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Topics")
    return page


def test_topics_messages_and_search(
    browser: Any, kafka_console: str, page_errors: list[str], shots: Path
) -> None:
    page = log_in(browser, kafka_console, page_errors, "ada")
    expect(page.locator("#topics")).to_contain_text("my-topic")
    expect(page.locator("#topics tr", has_text="bank.account")).to_be_visible()
    # the size in bytes, readable, with the exact count on hover
    orders_size = page.locator("#topics tr", has_text=ORDERS).locator("td.size")
    expect(orders_size).to_have_text(re.compile(r"^\d+\.\d KiB$"))
    expect(orders_size).to_have_attribute("title", re.compile(r"^\d+ bytes$"))
    page.screenshot(path=shots / "topics.png", full_page=True)
    page.get_by_role("link", name=ORDERS).click()
    expect(page.locator("#partitions tbody tr")).to_have_count(PARTITIONS)
    expect(page.locator("#partitions td.size")).to_have_text([re.compile(r"^\d+\.\d KiB$")] * 3)
    expect(page.locator("#topic-size")).to_have_text(re.compile(r"^\d+\.\d KiB$"))
    expect(page.locator("#configs")).to_contain_text("cleanup.policy")
    page.screenshot(path=shots / "topic.png", full_page=True)

    page.get_by_role("link", name="Browse messages").click()
    expect(page.locator("#messages tr.message")).to_have_count(40)
    page.get_by_label("Partition").select_option("2")
    page.get_by_label("From offset").fill("0")
    page.get_by_label("Value contains").fill('"sku-47"')
    page.get_by_role("button", name="Show").click()
    found = page.locator("#messages tr.message")
    expect(found).to_have_count(1)
    expect(found.locator("pre.key")).to_have_text("order-47")
    expect(found.locator("pre.value")).to_contain_text('"sku": "sku-47"')
    expect(found).to_contain_text("region: us")
    page.screenshot(path=shots / "messages-search.png", full_page=True)

    page.goto("/kafka/messages?topic=my-topic&partition=0&offset=0")
    expect(page.locator("#messages pre.value")).to_have_text(["value1", "value2"])
    page.context.close()
    assert page_errors == []


def test_group_lag_and_offset_reset(
    browser: Any, kafka_console: str, page_errors: list[str], shots: Path
) -> None:
    page = log_in(browser, kafka_console, page_errors, "ada")
    page.get_by_role("link", name="Consumer groups").click()
    expect(page.locator("#kafka-groups tr", has_text="live-readers")).to_contain_text("STABLE")
    page.get_by_role("link", name="live-readers").click()
    expect(page.locator("#members")).to_contain_text("live-reader-1")
    expect(page.locator("#reset")).to_have_count(0)  # not for a group in use
    page.go_back()
    page.get_by_role("link", name="demo-printer").click()
    expect(page.locator("#group-state")).to_have_text("EMPTY")
    expect(page.locator("#total-lag")).to_have_text("0")
    page.wait_for_load_state("load")
    page.locator("#reset select[name=to]").select_option("earliest")
    page.get_by_role("button", name="Reset offsets").click()
    expect(page.get_by_role("status")).to_contain_text("bank.account reset to earliest")
    expect(page.locator("#total-lag")).not_to_have_text("0")
    page.screenshot(path=shots / "group-reset.png", full_page=True)
    page.context.close()
    assert page_errors == []


def test_a_viewer_sees_keys_but_no_values(
    browser: Any, kafka_console: str, page_errors: list[str], shots: Path
) -> None:
    page = log_in(browser, kafka_console, page_errors, "vic")
    page.goto(f"/kafka/messages?topic={ORDERS}&partition=0&offset=0")
    expect(page.locator("#messages pre.key").first).to_have_text("order-0")
    expect(page.locator("#messages pre.value").first).to_contain_text("values are masked")
    expect(page.get_by_label("Value contains")).to_have_count(0)
    page.goto("/kafka/group?id=demo-printer")
    expect(page.locator("#reset")).to_have_count(0)
    page.screenshot(path=shots / "viewer-messages.png", full_page=True)
    page.context.close()
    assert page_errors == []

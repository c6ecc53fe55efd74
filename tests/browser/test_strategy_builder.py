"""The condition builder in a real browser: build a nested strategy by clicking, save it,
see version 1, then break a parameter and see the error next to its node."""

import re

import pytest
from playwright.sync_api import expect

from apps.strategies.models import StrategyVersion
from tests.browser.conftest import log_in, screenshot_path
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sma(period):
    return {"indicator": "sma", "params": {"period": period}}


EXPECTED_ENTRY = {
    "all": [
        {"left": sma(10), "op": "crosses_above", "right": sma(30)},
        {
            "any": [
                {
                    "left": {"indicator": "rsi", "params": {"period": 14}},
                    "op": "<",
                    "right": {"value": 70},
                },
                {
                    "left": {"field": "close"},
                    "op": ">",
                    "right": {"indicator": "ema", "params": {"period": 50}},
                },
            ]
        },
    ]
}
EXPECTED_EXIT = {"all": [{"left": sma(10), "op": "crosses_below", "right": sma(30)}]}


class Builder:
    """Drives the builder and waits for each HTMX swap to settle before the next step."""

    def __init__(self, page) -> None:
        self.page = page
        page.wait_for_function("window.htmx !== undefined")
        page.evaluate(
            "window.__settled = 0;"
            "document.body.addEventListener('htmx:afterSettle', () => window.__settled++);"
        )

    def swap(self, action) -> None:
        before = self.page.evaluate("window.__settled")
        action()
        self.page.wait_for_function(f"window.__settled > {before}")

    def field(self, node_id: str, name: str):
        return self.page.locator(f"#{node_id}__{name}")

    def select(self, node_id: str, name: str, value: str, *, swaps: bool = False) -> None:
        if swaps:
            self.swap(lambda: self.field(node_id, name).select_option(value))
        else:
            self.field(node_id, name).select_option(value)

    def fill(self, node_id: str, name: str, value: str) -> None:
        self.field(node_id, name).fill(value)

    def click(self, test_id: str) -> None:
        self.swap(lambda: self.page.get_by_test_id(test_id).click())

    def cross(self, node_id: str, op: str) -> None:
        # SMA(10) <op> SMA(30): a new condition starts as SMA(20) > close.
        self.fill(node_id, "left_p_period", "10")
        self.select(node_id, "op", op)
        self.select(node_id, "right_kind", "indicator", swaps=True)
        self.fill(node_id, "right_p_period", "30")


def test_a_trader_builds_a_nested_strategy_by_clicking(page, external_requests):
    UserFactory(email="builder@example.com", password=PASSWORD)
    log_in(page, email="builder@example.com", password=PASSWORD)

    page.get_by_role("banner").get_by_role("link", name="Strategies").click()
    expect(page.get_by_role("heading", name="Build your first strategy")).to_be_visible()
    page.locator("main").get_by_role("button", name="New strategy").first.click()
    page.get_by_role("button", name="Use condition builder").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("condition builder")
    b = Builder(page)
    page.get_by_label("Name").fill("Trend with RSI filter")

    # Entry: ALL[ SMA(10) crosses above SMA(30), ANY[ RSI(14) < 70, close > EMA(50) ] ]
    b.cross("entry-0", "crosses_above")
    b.click("add-group-entry")
    expect(page.locator("#node-entry-1")).to_contain_text("at least one is true")
    b.select("entry-1-0", "left_indicator", "rsi", swaps=True)
    expect(b.field("entry-1-0", "left_p_period")).to_have_value("14")
    b.select("entry-1-0", "op", "<")
    b.select("entry-1-0", "right_kind", "value", swaps=True)
    b.fill("entry-1-0", "right_value", "70")
    b.click("add-cond-entry-1")
    b.select("entry-1-1", "left_kind", "field", swaps=True)
    expect(b.field("entry-1-1", "left_field")).to_have_value("close")
    b.select("entry-1-1", "op", ">")
    b.select("entry-1-1", "right_kind", "indicator", swaps=True)
    b.select("entry-1-1", "right_indicator", "ema", swaps=True)
    b.fill("entry-1-1", "right_p_period", "50")
    # Exit: SMA(10) crosses below SMA(30)
    b.cross("exit-0", "crosses_below")
    # Values typed before a swap survived it.
    expect(b.field("entry-0", "left_p_period")).to_have_value("10")
    expect(b.field("entry-1-0", "right_value")).to_have_value("70")
    page.screenshot(path=screenshot_path("strategy-builder-filled"), full_page=True)

    page.get_by_role("button", name="Create strategy").click()
    expect(page).to_have_url(re.compile(r"/strategies/\d+/$"))
    version = StrategyVersion.objects.get()
    assert version.number == 1
    assert version.entry == EXPECTED_ENTRY
    assert version.exit == EXPECTED_EXIT
    spec = page.locator("#spec")
    expect(spec).to_contain_text("Version 1")
    entry = page.locator('[data-tree="entry"]')
    expect(entry).to_contain_text("SMA(10) crosses above SMA(30)")
    expect(entry).to_contain_text("ANY of")
    expect(entry).to_contain_text("RSI(14) is below (<) 70")
    expect(entry).to_contain_text("close is above (>) EMA(50)")
    expect(page.locator('[data-tree="exit"]')).to_contain_text("SMA(10) crosses below SMA(30)")
    page.screenshot(path=screenshot_path("strategy-version-1"), full_page=True)

    # Break a parameter: the error shows next to its node, and nothing is saved.
    page.get_by_role("button", name="Edit (new version)").click()
    b = Builder(page)
    b.fill("entry-1-0", "left_p_period", "0")
    page.get_by_role("button", name="Save as version 2").click()
    node = page.locator("#node-entry-1-0")
    expect(node.locator(".cb-errors")).to_contain_text(
        "entry.all[1].any[0].left.params.period: period must be an integer between 1 and 1000"
    )
    expect(b.field("entry-1-0", "left_p_period")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#node-entry-0 .cb-errors")).to_have_count(0)
    node.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_path("strategy-builder-error"), full_page=True)
    assert StrategyVersion.objects.count() == 1
    assert external_requests == []

"""The weighted vote in a real browser: a new user makes the entry a vote of two weighted
conditions, saves it, and reads it back on the version page."""

import re

import pytest
from playwright.sync_api import expect

from apps.strategies.models import StrategyVersion
from tests.apps.strategies.conftest import close_vs_sma, rsi_vs
from tests.browser.conftest import log_in, screenshot_path
from tests.browser.test_strategy_builder import Builder
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPECTED_ENTRY = {
    "weighted": [
        {"weight": 2, "when": rsi_vs("<", 30)},
        {"weight": 1, "when": close_vs_sma(">", 200)},
    ],
    "threshold": 2,
}


def test_a_new_user_builds_a_weighted_vote_and_sees_it_on_the_version_page(page, external_requests):
    UserFactory(email="composer@example.com", password=PASSWORD)
    log_in(page, email="composer@example.com", password=PASSWORD)
    page.goto("/strategies/new/?kind=conditions")
    b = Builder(page)
    page.get_by_label("Name").fill("RSI dip in an uptrend")

    # Entry: a weighted vote, 2 x RSI(14) < 30 and 1 x close > SMA(200), threshold 2.
    entry = page.locator("#node-entry")
    b.swap(lambda: entry.get_by_role("button", name="WEIGHTED VOTE").first.click())
    expect(entry.locator(".cb-group-head")).to_contain_text(
        "enter when the weights of the true signals add up to at least"
    )
    b.select("entry-0", "left_indicator", "rsi", swaps=True)
    b.select("entry-0", "op", "<")
    b.select("entry-0", "right_kind", "value", swaps=True)
    b.fill("entry-0", "right_value", "30")
    b.fill("entry-0", "weight", "2")
    b.click("add-cond-entry")
    b.select("entry-1", "left_kind", "field", swaps=True)
    b.select("entry-1", "right_kind", "indicator", swaps=True)
    b.fill("entry-1", "right_p_period", "200")
    expect(b.field("entry-1", "weight")).to_have_value("1")
    page.locator("#entry__threshold").fill("2")
    # Exit: RSI(14) > 70.
    b.select("exit-0", "left_indicator", "rsi", swaps=True)
    b.select("exit-0", "right_kind", "value", swaps=True)
    b.fill("exit-0", "right_value", "70")
    # Values typed before the later swaps survived them.
    expect(b.field("entry-0", "weight")).to_have_value("2")
    page.screenshot(path=screenshot_path("composer-builder-filled"), full_page=True)

    page.get_by_role("button", name="Create strategy").click()
    expect(page).to_have_url(re.compile(r"/strategies/\d+/$"))
    version = StrategyVersion.objects.get()
    assert version.number == 1
    assert version.entry == EXPECTED_ENTRY

    page.get_by_role("link", name=re.compile(r"^v1\b")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 1")
    outline = page.locator('[data-tree="entry"]')
    expect(outline).to_contain_text("WEIGHTED VOTE ≥ 2 of")
    expect(outline).to_contain_text("2 \N{MULTIPLICATION SIGN} RSI(14) is below (<) 30")
    expect(outline).to_contain_text("1 \N{MULTIPLICATION SIGN} close is above (>) SMA(200)")
    page.screenshot(path=screenshot_path("composer-version-1"), full_page=True)
    assert external_requests == []

"""The backtest form shows futures settings only on a futures task and the limit offset
only for limit orders, as the trader changes the selects and after adding a pair."""

import pytest
from playwright.sync_api import expect

from apps.strategies.services import strategy_create
from tests.apps.backtests.conftest import import_pair_candles
from tests.browser.conftest import log_in, screenshot_path
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_futures_and_limit_fields_follow_the_selects(page, external_requests):
    user = UserFactory(email="futures@example.com", password=PASSWORD)
    strategy_create(
        owner=user, name="Cross", kind="template", template="sma_cross", params={"fast": 10}
    )
    import_pair_candles()
    log_in(page, email=user.email, password=PASSWORD)
    page.goto("/backtests/new/")

    leverage = page.locator("[name=pairs-0-leverage]")
    offset = page.locator("[name=pairs-0-limit_offset]")
    expect(leverage).to_be_hidden()
    expect(offset).to_be_hidden()

    page.get_by_label("Market type").select_option("futures")
    expect(leverage).to_be_visible()
    expect(page.locator("[name=pairs-0-direction]")).to_be_visible()
    expect(page.locator("#pair-0")).to_contain_text("Funding rate")
    page.locator("[name=pairs-0-order_type]").select_option("limit")
    expect(offset).to_be_visible()

    # A pair added over htmx copies the first one's settings and shows the same fields.
    page.get_by_role("button", name="+ Add pair").click()
    expect(page.locator("[name=pairs-1-leverage]")).to_be_visible()
    expect(page.locator("[name=pairs-1-limit_offset]")).to_be_visible()
    page.screenshot(path=screenshot_path("backtest-create-futures"), full_page=True)

    page.locator("[name=pairs-1-order_type]").select_option("market")
    expect(page.locator("[name=pairs-1-limit_offset]")).to_be_hidden()
    expect(offset).to_be_visible()  # each pair follows its own order type
    page.get_by_label("Market type").select_option("spot")
    expect(leverage).to_be_hidden()
    expect(page.locator("[name=pairs-1-leverage]")).to_be_hidden()
    assert external_requests == []

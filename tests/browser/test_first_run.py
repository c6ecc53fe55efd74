"""A person's first minutes, in a real browser: landing, log in, first-run dashboard."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot_path
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def test_a_visitor_logs_in_and_is_led_to_connect_an_exchange(page, external_requests):
    user = UserFactory(email="newcomer@example.com", password=PASSWORD)

    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("crypto trading bots")
    page.screenshot(path=screenshot_path("landing"), full_page=True)
    page.get_by_role("banner").get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("banner")).to_contain_text(user.email)
    connect = page.get_by_role("button", name="Connect an exchange")
    expect(connect).to_be_visible()
    page.screenshot(path=screenshot_path("dashboard-first-run"), full_page=True)
    connect.click()
    expect(page).to_have_url(re.compile(r"/exchanges/"))
    assert external_requests == []


def test_pages_load_htmx_2_and_the_ws_extension(page, external_requests):
    page.goto("/")

    page.wait_for_function("window.htmx !== undefined")
    assert page.evaluate("window.htmx.version").startswith("2.")
    # The extension is registered only if htmx hands it a ws-connect element to open.
    connecting = page.evaluate(
        """() => new Promise((resolve) => {
            document.body.addEventListener("htmx:wsConnecting", () => resolve(true));
            const probe = document.createElement("div");
            probe.setAttribute("hx-ext", "ws");
            probe.setAttribute("ws-connect", "/ws/probe/");
            document.body.append(probe);
            htmx.process(probe);
            setTimeout(() => resolve(false), 3000);
        })"""
    )
    assert connecting is True
    assert external_requests == []


def test_htmx_requests_carry_the_csrf_token_from_the_body(page):
    user = UserFactory(email="csrf@example.com", password=PASSWORD)
    log_in(page, email=user.email, password=PASSWORD)

    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")
    without_token = page.evaluate(
        "fetch('/accounts/logout/', {method: 'POST', redirect: 'manual'}).then(r => r.status)"
    )
    page.evaluate("htmx.ajax('POST', '/accounts/logout/', {source: document.body, swap: 'none'})")

    assert len(token) == 64
    assert without_token == 403
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/dashboard/$"))


@pytest.mark.parametrize("browser_context_options", [{"viewport": PHONE}])
def test_the_nav_fits_and_works_on_a_phone(page):
    user = UserFactory(email="phone@example.com", password=PASSWORD)

    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("landing-phone"), full_page=True)
    log_in(page, email=user.email, password=PASSWORD)
    for link, path in (("Profile", "/accounts/profile/"), ("Activity", "/activity/")):
        page.get_by_role("banner").get_by_role("link", name=link).click()
        expect(page).to_have_url(re.compile(f"{re.escape(path)}$"))
        # The URL changes before the new page's stylesheet applies; measure the laid-out page.
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("activity-phone"), full_page=True)
    expect(page.get_by_role("banner").get_by_role("button", name="Log out")).to_be_visible()

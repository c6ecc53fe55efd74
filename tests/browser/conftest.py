"""Playwright against Debian's chromium and pytest-django's live server.

The browser is never downloaded: `make test` installs the distribution's chromium, and
without it these tests skip with a reason. Every request to a host other than the live
server is aborted and recorded, so a page that still loads something from a CDN fails.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
# the ORM calls that tests make (factories, assertions) from "async" context.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
DESKTOP = {"width": 1280, "height": 900}
LOCAL_HOSTS = {"localhost", "127.0.0.1"}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so the page fixture knows if the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def external_requests() -> list[str]:
    return []


@pytest.fixture
def browser_context_options() -> dict:
    return {"viewport": DESKTOP}


@pytest.fixture
def page(chromium, live_server, request, external_requests, browser_context_options) -> Iterator:
    context = chromium.new_context(base_url=live_server.url, **browser_context_options)

    def _local_only(route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            external_requests.append(route.request.url)
            route.abort()

    context.route("**/*", _local_only)
    browser_page = context.new_page()
    browser_page.set_default_timeout(10_000)
    yield browser_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        browser_page.screenshot(path=screenshot_path(request.node.name), full_page=True)
    context.close()


def screenshot_path(name: str) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    return RESULTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def log_in(page, *, email: str, password: str) -> None:
    """Log in through the real form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")

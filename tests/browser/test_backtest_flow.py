"""A trader backtests a condition strategy on two pairs in a real browser, with a real Celery
worker: the form (adding a pair over HTMX), the live progress bar, then the results with the
K-line chart and its entry/exit markers, the equity and drawdown charts and the metrics.

The worker is started only after the task is queued, so the page is seen waiting and then
updating by itself. pytest-django's live server speaks HTTP only, so the page follows the run
through its HTTP polling fallback here; tests/apps/backtests/test_consumer.py covers the
websocket push.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.engine.templates import template_get
from apps.strategies.services import strategy_create
from tests.apps.backtests.conftest import import_pair_candles
from tests.apps.common.processes import process_group_stop, process_start, subprocess_env
from tests.browser.conftest import log_in, screenshot_path
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RUN_TIMEOUT_MS = 90_000


ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "backtests", "-c", "1"]


def start_worker(log: Path) -> subprocess.Popen:
    """A real worker on the `backtests` queue, on this test's database."""
    return process_start(WORKER, env=subprocess_env(key_prefix="tltest-backtests"), log=log)


def condition_version(owner):
    sma = template_get("sma_cross")
    _strategy, version = strategy_create(
        owner=owner,
        name="Trend follower",
        kind="conditions",
        entry=sma.entry,
        exit=sma.exit,
        params={"fast": 10, "slow": 30},
    )
    return version


def test_a_trader_runs_a_two_pair_backtest_and_reads_the_results(page, external_requests, tmp_path):
    user = UserFactory(email="trader@example.com", password=PASSWORD)
    version = condition_version(user)
    import_pair_candles()

    log_in(page, email=user.email, password=PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Backtests").click()
    expect(page.locator("#no-backtests")).to_be_visible()
    page.locator("#no-backtests").get_by_role("button", name="New backtest").click()

    page.get_by_label("Name").fill("Majors, autumn to spring")
    page.locator("[name=start]").fill("2020-09-01")
    page.locator("[name=end]").fill("2021-02-28")
    page.locator("[name=pairs-0-symbol]").fill("BTC/USDT")
    page.locator("[name=pairs-0-strategy_version]").select_option(str(version.pk))
    page.get_by_role("button", name="+ Add pair").click()
    second = page.locator("#pair-1")
    expect(second).to_be_visible()
    # The new pair starts with the first one's settings; only the symbol is left to type.
    expect(second.locator("[name=pairs-1-taker_fee]")).to_have_value("0.1")
    second.locator("[name=pairs-1-symbol]").fill("BNB/USDT")
    page.screenshot(path=screenshot_path("backtest-create"), full_page=True)
    page.get_by_role("button", name="Run backtest").click()

    expect(page).to_have_url(re.compile(r"/backtests/\d+/$"))
    progress = page.locator("#bt-progress")
    expect(progress).to_have_attribute("data-status", "queued")
    expect(progress.locator("progress")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()

    worker = start_worker(tmp_path / "worker.log")
    try:
        # The bar fills and the page swaps in the results by itself, without a reload.
        expect(page.locator("#bt-progress")).to_have_attribute(
            "data-status", "done", timeout=RUN_TIMEOUT_MS
        )
        expect(page.locator("#task-metrics")).to_be_visible(timeout=10_000)
    except AssertionError:
        print((tmp_path / "worker.log").read_text()[-4000:])
        raise
    finally:
        process_group_stop(worker)

    page.wait_for_function("document.body.dataset.chartsReady === '2'")
    expect(page.locator("#bt-equity canvas").first).to_be_visible()
    expect(page.locator("#pair-table tbody tr")).to_have_count(2)
    expect(page.locator("#task-metrics")).to_contain_text("Sharpe")
    page.screenshot(path=screenshot_path("backtest-detail"), full_page=True)

    page.locator("#pair-table").get_by_role("link", name="Chart & trades →").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("BTC/USDT")
    page.wait_for_function("document.body.dataset.chartsReady === '3'")
    markers = int(page.locator("#bt-kline").get_attribute("data-markers"))
    trades = version.backtest_pairs.get(symbol="BTC/USDT").trades
    closed = trades.exclude(exit_time=None).count()
    assert markers == trades.count() + closed > 10
    for label in ("Total return", "Win rate", "Profit factor", "Max drawdown", "Buy and hold"):
        expect(page.locator("#metrics")).to_contain_text(label)
    page.screenshot(path=screenshot_path("backtest-pair"), full_page=True)

    # Sorting the trades by P&L, biggest first, happens in place.
    page.locator("#trade-table").get_by_role("link", name="P&L").click()
    page.locator("#trade-table").get_by_role("link", name="P&L ▲").click()
    expect(page).to_have_url(re.compile(r"sort=pnl&dir=desc"))
    best = trades.order_by("-pnl").first()
    expect(page.locator("#trade-table tbody tr").first.locator("td").first).to_have_text(
        str(best.number)
    )
    page.screenshot(path=screenshot_path("backtest-pair-sorted"), full_page=True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Backtests").click()
    expect(page.locator("#backtest-list")).to_contain_text("Majors, autumn to spring")
    page.screenshot(path=screenshot_path("backtest-list"), full_page=True)
    assert external_requests == []


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, seconds: float = 30) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_progress_reaches_the_page_over_the_websocket_alone(chromium, tmp_path):
    """Daphne (the real ASGI stack) and a worker, both in development settings so they share
    the channel layer; HTTP polling is blocked, so only the websocket can move the page."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = UserFactory(email="live@example.com")
    # Hashed for the development settings daphne runs with (the test settings use MD5).
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "backtestwssalt")
    user.save(update_fields=["password"])
    version = condition_version(user)
    import_pair_candles()
    from datetime import UTC, datetime

    from apps.backtests.services import backtest_task_create
    from tests.apps.backtests.conftest import pair_input

    env = subprocess_env(key_prefix="tltest-backtests-ws") | {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "TRADELOOP_CHANNELS_PREFIX": "tlbtws",
    }
    port = free_port()
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    web = process_start([*daphne, "config.asgi:application"], env=env, log=tmp_path / "web.log")
    worker = None
    context = chromium.new_context(base_url=f"http://127.0.0.1:{port}")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/")
        page = context.new_page()
        page.set_default_timeout(15_000)
        polls: list[str] = []

        def block_polling(route):
            polls.append(route.request.url)
            route.abort()

        page.route("**/progress/", block_polling)
        log_in(page, email=user.email, password=PASSWORD)
        with page.expect_event("websocket") as socket_info:
            task = backtest_task_create(
                owner=user,
                name="Over the socket",
                exchange="binance",
                market_type="spot",
                start=datetime(2020, 9, 1, tzinfo=UTC),
                end=datetime(2021, 3, 1, tzinfo=UTC),
                pairs=[pair_input(version), pair_input(version, "BNB/USDT")],
            )
            page.goto(f"/backtests/{task.pk}/")
        assert socket_info.value.url.endswith(f"/ws/backtests/{task.pk}/")
        expect(page.locator("#bt-progress")).to_have_attribute("data-status", "queued")

        worker = process_start(WORKER, env=env, log=tmp_path / "worker.log")
        expect(page.locator("#bt-progress")).to_have_attribute(
            "data-status", "done", timeout=RUN_TIMEOUT_MS
        )
        expect(page.locator("#task-metrics")).to_be_visible(timeout=10_000)
        page.wait_for_function("document.body.dataset.chartsReady === '2'")
        assert polls, "the page should have tried to poll (and been refused)"
    except AssertionError:
        for name in ("web", "worker"):
            log = tmp_path / f"{name}.log"
            if log.exists():
                print(f"--- {name} ---\n{log.read_text()[-3000:]}")
        raise
    finally:
        context.close()
        for process in (worker, web):
            if process is not None:
                process_group_stop(process)

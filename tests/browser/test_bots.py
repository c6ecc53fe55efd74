"""Issue 6's acceptance, in a real browser against the real stack (daphne, a Celery worker
and beat, in development settings so they share the channel layer): a new user starts a
paper bot from a backtested version, sees it trade on replayed candles with the P&L card
moving over the websocket alone (HTTP re-reads of the card are blocked, and the page is
never reloaded), stops it with "close positions", and finds the position flat and the
final P&L on the page.

It needs botcore's tick (apps/bots/tasks.py); without it the test skips with that reason.
"""

import importlib.util
import re
import sys
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from apps.backtests import tasks as backtest_tasks
from apps.backtests.services import backtest_task_create
from apps.bots.models import Bot, BotFill, BotLog, BotOrder, BotRun, PaperBook
from apps.engine.ledger import Ledger
from apps.exchanges.services import exchange_account_create
from tests.apps.backtests.conftest import import_pair_candles, pair_input
from tests.apps.common.processes import process_group_stop, process_start, subprocess_env
from tests.browser.conftest import log_in, screenshot_path
from tests.browser.test_backtest_flow import condition_version, free_port, wait_for_http
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TRADE_TIMEOUT_MS = 120_000
# Two candles before the SMA 10/30 cross on BTC/USDT 1h (apps/bots/demo.py).
REPLAY_START = "2021-04-23T22:00"
NO_VALUE = "\N{EN DASH}"  # what the card shows before the first tick


def backtested_pair(user, monkeypatch):
    """A finished backtest of the user's version, run in this process."""
    version = condition_version(user)
    monkeypatch.setattr(backtest_tasks.backtest_task_run, "apply_async", lambda **kw: None)
    task = backtest_task_create(
        owner=user,
        name="Before going paper",
        exchange="binance",
        market_type="spot",
        start=datetime(2021, 3, 1, tzinfo=UTC),
        end=datetime(2021, 5, 1, tzinfo=UTC),
        pairs=[pair_input(version)],
    )
    backtest_tasks.backtest_task_run(task.pk)
    return task.pairs.get()


def platform(tmp_path) -> tuple[int, list]:
    env = subprocess_env(key_prefix="tltest-bots") | {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "TRADELOOP_CHANNELS_PREFIX": "tlbots",
    }
    port = free_port()
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    commands = {
        "web": [*daphne, "config.asgi:application"],
        "worker": [*celery, "worker", "-Q", "ticks,orders,default", "-c", "2"],
        "beat": [*celery, "beat", "-s", str(tmp_path / "beat-schedule")],
    }
    processes = [
        process_start(command, env=env, log=tmp_path / f"{name}.log")
        for name, command in commands.items()
    ]
    return port, processes


def print_bot_state(user) -> None:
    """What the runs, orders and logs say, for a failure's report."""
    for run in BotRun.objects.filter(bot__owner=user):
        print(run.status, run.last_candle_at, run.next_due_at, run.ticks_done, run.last_error)
    for order in BotOrder.objects.filter(bot__owner=user).order_by("created_at"):
        print(
            order.client_order_id, order.side, order.type, order.status, order.reason, order.message
        )
    for line in BotLog.objects.filter(bot__owner=user).order_by("-created_at")[:20]:
        print(line.created_at, line.source, line.message)


def test_a_new_user_runs_a_paper_bot_from_a_backtest(chromium, tmp_path, monkeypatch):
    if importlib.util.find_spec("apps.bots.tasks") is None:
        pytest.skip("botcore's tick (apps/bots/tasks.py) has not landed on this branch")
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = UserFactory(email="newbie@example.com")
    # Hashed for the development settings daphne runs with (the test settings use MD5).
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "botflowsalt")
    user.save(update_fields=["password"])
    exchange_account_create(owner=user, exchange="binance", label="Paper", mode="paper")
    import_pair_candles()
    pair = backtested_pair(user, monkeypatch)

    port, processes = platform(tmp_path)
    context = chromium.new_context(base_url=f"http://127.0.0.1:{port}")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/")
        page = context.new_page()
        page.set_default_timeout(15_000)
        card_reads: list[str] = []

        def block_card_reads(route):
            card_reads.append(route.request.url)
            route.abort()

        page.route("**/card/", block_card_reads)
        log_in(page, email=user.email, password=PASSWORD)

        # From the backtest's results to a pre-filled bot form.
        page.goto(f"/backtests/pairs/{pair.pk}/")
        page.get_by_role("button", name="Run as paper bot").click()
        expect(page).to_have_url(re.compile(r"/bots/new/\?version="))
        expect(page.locator("[name=symbols]")).to_have_value("BTC/USDT")
        page.locator("[name=feed]").select_option("replay")
        page.locator("[name=replay_start]").fill(REPLAY_START)
        page.locator("[name=replay_seconds_per_candle]").fill("1")
        page.screenshot(path=screenshot_path("bot-create"), full_page=True)
        page.get_by_role("button", name="Create bot").click()
        expect(page).to_have_url(re.compile(r"/bots/\d+/$"))
        bot = Bot.objects.get(owner=user)

        with page.expect_event("websocket") as socket_info:
            page.get_by_role("button", name="Start").click()
        assert socket_info.value.url.endswith(f"/ws/bots/{bot.pk}/")
        card = page.locator(f"#bot-card-{bot.pk}")
        expect(card).to_have_attribute("data-status", "RUNNING")
        page.evaluate("window.__sameDocument = true")

        # It trades on the replay and the card moves, over the socket, in the same page.
        expect(page.locator("#bot-trades")).to_be_visible(timeout=TRADE_TIMEOUT_MS)
        expect(card.locator(".bot-pnl")).not_to_have_text(NO_VALUE)
        ticks = int(card.get_attribute("data-ticks"))
        expect(card).not_to_have_attribute("data-ticks", str(ticks), timeout=30_000)
        assert page.evaluate("window.__sameDocument") is True
        assert BotFill.objects.filter(bot=bot).exists()
        page.screenshot(path=screenshot_path("bot-trading"), full_page=True)

        # Stop, closing positions (the checkbox defaults to the bot's close_on_stop). The
        # page re-reads the card over HTTP when its socket reconnects after the reload, so
        # a push sent while it loaded is not lost: let those reads through from here on.
        page.unroute("**/card/")
        expect(page.locator("#bot-close-positions")).to_be_checked()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator(f"#bot-card-{bot.pk}")).to_have_attribute(
            "data-status", "STOPPED", timeout=60_000
        )
        page.reload()
        expect(page.locator("#bot-flat")).to_be_visible()
        run = BotRun.objects.get(bot=bot)
        assert run.status == BotRun.Status.STOPPED and run.close_positions
        ledger = Ledger.from_dict(PaperBook.objects.get(account=bot.account).state["ledger"])
        assert ledger.holding("BTC/USDT").qty == 0
        final = page.locator(f"#bot-card-{bot.pk} .bot-pnl")
        expect(final).to_contain_text(f"{run.equity_last - run.equity_start:,.2f}")
        page.screenshot(path=screenshot_path("bot-stopped"), full_page=True)
    except AssertionError:
        print_bot_state(user)
        for name in ("web", "worker", "beat"):
            log = tmp_path / f"{name}.log"
            if log.exists():
                print(f"--- {name} ---\n{log.read_text()[-3000:]}")
        raise
    finally:
        context.close()
        for process in processes:
            process_group_stop(process)

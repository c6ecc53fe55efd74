"""The demo's paper bots: created once on replayed candles, started when never run."""

from django.core.management import call_command

from apps.bots.demo import DEMO_BOTS, demo_bots_seed
from apps.bots.models import Bot
from apps.dashboard.services import demo_data_seed, demo_user_ensure
from tests.apps.bots.conftest import store_candles


def test_the_demo_bots_are_created_once_on_replayed_candles(db, settings, capsys):
    for demo in DEMO_BOTS:
        store_candles(symbol=demo.symbol, start=demo.replay_start)

    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out

    bots = Bot.objects.filter(owner__email=settings.DEMO_USER_EMAIL).order_by("name")
    assert [(b.symbols, b.feed, b.timeframe) for b in bots] == [
        (["BNB/USDT"], "replay", "1h"),
        (["BTC/USDT"], "replay", "1h"),
    ]
    assert {b.replay_start for b in bots} == {demo.replay_start for demo in DEMO_BOTS}
    assert all(b.strategy_version.strategy.owner == b.owner for b in bots)
    # Each bot on its own paper account, so one bot's trades never move the other's P&L.
    assert len({b.account_id for b in bots}) == 2
    assert all(b.account.is_paper and b.account.owner == b.owner for b in bots)
    assert "Demo: SMA cross on BTC" in first
    assert "the paper bot" not in second


def test_without_the_demo_candles_no_bot_is_made(db):
    user = demo_user_ensure(email="demo@example.com", password="x-long-password-1")
    demo_data_seed(user=user)

    assert demo_bots_seed(user=user) == []
    assert not Bot.objects.exists()

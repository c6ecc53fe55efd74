"""Bot pages: list (empty state, cards), the new-bot form (pre-fill, errors on the field,
nothing written), and the bot page built from what a run wrote."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.bots.models import (
    AccountRisk,
    Bot,
    BotFill,
    BotLog,
    BotOrder,
    BotRun,
    EquitySnapshot,
    KillSwitch,
    PaperBook,
)
from apps.engine.ledger import Adjustment, Ledger
from apps.engine.types import Fill
from tests.apps.bots.conftest import REPLAY_FROM, make_bot, make_version

pytestmark = pytest.mark.django_db


def form_data(version, account, **overrides):
    data = {
        "name": "From the form",
        "strategy_version_id": str(version.pk),
        "account_id": str(account.pk),
        "symbols": "BTC/USDT",
        "timeframe": "1h",
        "feed": "replay",
        "replay_start": "2021-01-01T00:00",
        "replay_seconds_per_candle": "2",
        "risk_profile": "conservative",
        "leverage": "1",
        "cooldown_bars": "0",
        "close_on_stop": "on",
    }
    return data | overrides


def test_the_list_shows_an_empty_state_with_a_call_to_action(alice_client):
    body = alice_client.get("/bots/").content.decode()

    assert 'id="no-bots"' in body
    assert 'href="/bots/new/"' in body


def test_the_list_shows_a_live_card_per_bot(alice, alice_client, candles):
    bot = make_bot(alice)

    body = alice_client.get("/bots/").content.decode()

    assert f'id="bot-card-{bot.pk}"' in body
    assert 'ws-connect="/ws/bots/"' in body
    assert "Not started" in body
    assert 'id="bot-panic"' in body


def test_the_form_is_prefilled_from_a_backtested_version(alice, alice_client, alice_version):
    body = alice_client.get(f"/bots/new/?version={alice_version.pk}&symbol=BNB/USDT").content
    body = body.decode()

    assert f'<option value="{alice_version.pk}" selected>' in body
    assert 'value="BNB/USDT"' in body
    assert "SMA cross v1 paper" in body
    # Help text shows every profile's values and caps.
    assert "aggressive" in body.lower() and "0.0025 / 0.005" in body


def test_a_valid_form_creates_the_bot(alice, alice_client, alice_version, alice_account, candles):
    response = alice_client.post(
        "/bots/new/", form_data(alice_version, alice_account, stop_loss="3", sizing="percent")
    )

    bot = Bot.objects.get(owner=alice)
    assert response.status_code == 302 and response["Location"] == f"/bots/{bot.pk}/"
    assert bot.risk_overrides == {"stop_loss": "0.03", "sizing": "percent"}


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"symbols": "DOGE/USDT"}, "symbols", "no stored 1h candles"),
        ({"risk_per_trade": "5"}, "risk_per_trade", "cap of 0.005"),
        ({"leverage": "2"}, "leverage", "cap of 1"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_nothing_is_written(
    alice_client, alice_version, alice_account, candles, overrides, field, text
):
    response = alice_client.post("/bots/new/", form_data(alice_version, alice_account, **overrides))

    assert response.status_code == 200
    assert text in response.context["form"].errors[field][0]
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Bot.objects.exists()


def test_a_strangers_version_is_not_offered(alice_client, charlie, alice_account, candles):
    charlies = make_version(charlie)

    response = alice_client.post("/bots/new/", form_data(charlies, alice_account))

    assert "strategy_version_id" in response.context["form"].errors
    assert not Bot.objects.exists()


def test_the_ceiling_is_a_form_error(alice, alice_client, alice_version, alice_account, candles):
    alice.max_bots = 0
    alice.save(update_fields=["max_bots"])

    response = alice_client.post("/bots/new/", form_data(alice_version, alice_account))

    assert "limit of 0 bots" in response.content.decode()
    assert not Bot.objects.exists()


@pytest.fixture
def traded_bot(alice, candles):
    """A bot whose run bought and sold once, still holds 0.5, and logged 60 lines."""
    bot = make_bot(alice, close_on_stop=False)
    run = BotRun.objects.create(
        bot=bot,
        status=BotRun.Status.RUNNING,
        started_at=REPLAY_FROM,
        last_candle_at=REPLAY_FROM + timedelta(hours=3),
        last_tick_at=REPLAY_FROM + timedelta(hours=4),
        ticks_done=4,
        ticks_dropped=1,
        equity_start=Decimal(10_000),
        equity_last=Decimal("10012.5"),
        realized_pnl=Decimal(10),
    )
    fills = []
    for n, (side, qty, price) in enumerate([("buy", "1", "100"), ("sell", "0.5", "120")]):
        order = BotOrder.objects.create(
            bot=bot, run=run, account=bot.account, client_order_id=f"c{n}", symbol="BTC/USDT",
            side=side, type="market", status=BotOrder.Status.FILLED,
            reason="signal" if side == "buy" else "stop",
        )  # fmt: skip
        fill = BotFill.objects.create(
            bot=bot, order=order, account=bot.account, fill_id=f"f{n}", symbol="BTC/USDT",
            side=side, qty=Decimal(qty), price=Decimal(price), fee=Decimal(0), fee_asset="USDT",
            executed_at=REPLAY_FROM + timedelta(hours=n + 1),
        )  # fmt: skip
        fills.append(fill)
    ledger = Ledger("USDT")
    ledger.adjust(Adjustment("deposit", "USDT", Decimal(10_000), REPLAY_FROM))
    for fill in fills:
        ledger.apply_fill(
            Fill(fill.fill_id, fill.order.client_order_id, fill.symbol, fill.side, fill.qty,
                 fill.price, fill.fee, fill.fee_asset, "taker", fill.executed_at)
        )  # fmt: skip
    PaperBook.objects.create(account=bot.account, quote="USDT", state={"ledger": ledger.to_dict()})
    EquitySnapshot.objects.create(
        run=run, time=REPLAY_FROM + timedelta(hours=3), equity=Decimal("10012.5"),
        cash=Decimal(10_010), position_value=Decimal("2.5"), realized_pnl=Decimal(10),
        unrealized_pnl=Decimal("1.75"),
    )  # fmt: skip
    BotLog.objects.bulk_create(BotLog(bot=bot, run=run, message=f"line {i}") for i in range(60))
    return bot


def test_the_bot_page_shows_the_run(alice_client, traded_bot):
    body = alice_client.get(f"/bots/{traded_bot.pk}/").content.decode()

    assert 'ws-connect="/ws/bots/' in body
    assert "4 done, 1 dropped" in body
    assert "12.50" in body  # P&L since the start
    # The position: 0.5 left at 100, marked at the last candle's close (103.5).
    assert 'id="bot-positions"' in body and "1.75" in body
    # One closed round trip (+10) and one open lot, from the fills.
    assert 'id="bot-trades"' in body and "10.00" in body
    assert 'id="bot-orders"' in body and ">stop<" in body
    # Stop offers "close positions", unchecked as this bot's close_on_stop is off.
    assert 'id="bot-close-positions">' in body
    assert '"equity": [{"time"' in body


def test_logs_are_paginated(alice_client, traded_bot):
    first = alice_client.get(f"/bots/{traded_bot.pk}/").content.decode()
    second = alice_client.get(
        f"/bots/{traded_bot.pk}/?partial=logs&page=2", headers={"HX-Request": "true"}
    ).content.decode()

    assert "line 59" in first and "line 9<" not in first
    assert '<section id="bot-logs">' in second
    assert "line 9<" in second and "<html" not in second


def test_the_card_partial_resyncs_over_http(alice_client, traded_bot):
    body = alice_client.get(f"/bots/{traded_bot.pk}/card/").content.decode()

    assert body.lstrip().startswith(f'<article id="bot-card-{traded_bot.pk}"')
    assert 'hx-trigger="htmx:wsOpen from:body"' in body


def test_a_button_reports_a_refusal_without_changing_anything(alice_client, traded_bot):
    BotRun.objects.filter(bot=traded_bot).update(status=BotRun.Status.STOPPED)

    response = alice_client.post(f"/bots/{traded_bot.pk}/pause/", follow=True)

    assert "The bot is not running." in response.content.decode()
    assert BotRun.objects.get(bot=traded_bot).status == BotRun.Status.STOPPED


def test_an_account_wide_halt_shows_the_risk_resume_button(alice_client, traded_bot):
    AccountRisk.objects.create(account=traded_bot.account, state={"stage": "HALTED"})

    body = alice_client.get(f"/bots/{traded_bot.pk}/").content.decode()

    assert 'id="bot-risk"' in body and "Risk stage: HALTED" in body
    assert f'action="/bots/{traded_bot.pk}/risk-resume/"' in body


def test_operators_can_read_every_bot_table_in_the_admin(admin_client, traded_bot):
    for model in ("bot", "botrun", "botorder", "botfill", "botlog", "killswitch"):
        assert admin_client.get(f"/admin/bots/{model}/").status_code == 200, model
    assert admin_client.get(f"/admin/bots/bot/{traded_bot.pk}/change/").status_code == 200


def test_an_engaged_panic_switch_offers_its_release(alice, alice_client, traded_bot):
    KillSwitch.objects.create(user=alice, engaged=True)

    body = alice_client.get("/bots/").content.decode()

    assert 'id="panic-engaged"' in body and 'action="/bots/panic/release/"' in body


def test_the_live_section_is_re_read_alone(alice_client, traded_bot):
    body = alice_client.get(
        f"/bots/{traded_bot.pk}/?partial=live", headers={"HX-Request": "true"}
    ).content.decode()

    assert body.lstrip().startswith('<section id="bot-live">')
    assert 'id="bot-positions"' in body and 'id="bot-logs"' not in body

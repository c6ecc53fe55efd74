"""After a crash: orders left PENDING_SUBMIT are resolved by client order id against the
account's broker (the reconcile runs on worker start and on beat), and a tick that ran
over its time limit is counted as dropped while the bot goes on."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.bots import execution
from apps.bots.models import BotOrder, BotRun, Tick
from apps.bots.schedule import bot_orders_reconcile
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_overrun, bot_tick_run
from apps.engine.clock import FixedClock
from apps.engine.types import OrderRequest
from tests.apps.bots.conftest import HOUR, START, replay_bot, template_version


def stuck_order(run: BotRun, client_order_id: str) -> BotOrder:
    order = BotOrder.objects.create(
        bot=run.bot,
        run=run,
        account=run.bot.account,
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side="buy",
        type="market",
        quote_qty=Decimal(100),
    )
    BotOrder.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    return order


def test_reconcile_resolves_orders_a_crash_left_pending(alice, btc_hours):
    run = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    placed = stuck_order(run, f"r{run.pk}-placed")
    lost = stuck_order(run, f"r{run.pk}-lost")
    with execution.account_broker(
        account=run.bot.account, clock=FixedClock(START), quote="USDT"
    ) as broker:
        broker.instruments["BTC/USDT"] = execution.paper_instrument("BTC/USDT")
        broker.place_order(
            OrderRequest(placed.client_order_id, "BTC/USDT", "buy", quote_qty=placed.quote_qty)
        )
    assert bot_orders_reconcile() == 2
    placed.refresh_from_db()
    lost.refresh_from_db()
    assert placed.status == "OPEN"
    assert lost.status == "REJECTED" and "never reached the broker" in lost.message
    assert bot_orders_reconcile() == 0


def test_a_tick_over_its_time_limit_is_dropped_and_the_bot_goes_on(alice, btc_hours):
    run = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    bot_tick_overrun(run_id=run.pk, candle_time=START)
    run.refresh_from_db()
    assert run.status == "RUNNING" and run.ticks_dropped == 1
    assert Tick.objects.get(run=run).status == "dropped"
    assert bot_tick_run(run_id=run.pk, candle_time=START) == "duplicate"
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR) == "done"

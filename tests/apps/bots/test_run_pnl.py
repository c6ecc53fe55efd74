"""A run's realized and unrealized P&L and its loss streak are its own, even on a shared
paper account whose book holds every bot's fills."""

from decimal import Decimal

from apps.bots import execution, run_pnl
from apps.bots.models import BotFill, BotLog, BotOrder, BotRun, EquitySnapshot, PaperBook
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run, bot_ticks_run
from apps.engine.clock import FixedClock
from apps.market.models import Candle
from tests.apps.bots.conftest import FLIP, HOUR, START, paper_account, replay_bot, script_version

HOLD_ONCE = (
    "def main(sdk, params):\n"
    "    if not sdk.state.get('done'):\n"
    "        sdk.buy(amount=500)\n"
    "        sdk.state['done'] = True\n"
)


def book_realized(account) -> Decimal:
    with execution.account_broker(account=account, clock=FixedClock(START), quote="USDT") as broker:
        return broker.ledger.realized


def test_two_bots_on_one_account_each_see_their_own_pnl(alice, btc_hours):
    account = paper_account(alice, label="Shared")
    holder_bot = replay_bot(
        alice,
        script_version(alice, HOLD_ONCE, name="Holder"),
        account=account,
        name="Holder",
        cooldown_after_losses=1,
        cooldown_bars=5,
    )
    holder = bot_run_start(bot=holder_bot, acting_user=alice)
    PaperBook.objects.filter(account=account).update(taker_fee=Decimal("0.05"))
    for k in range(2):  # the holder's buy, filled on the next candle
        assert bot_tick_run(run_id=holder.pk, candle_time=START + HOUR * k) == "done"
    # The trader starts beside the holding (not assumed) and flips; 5 % per side: every
    # round trip of it loses money.
    trader_bot = replay_bot(alice, script_version(alice, FLIP), account=account, name="Trader")
    trader = bot_run_start(bot=trader_bot, acting_user=alice)
    for k in range(2, 11):
        # The holder ticks first: the candle's fills of the trader's orders happen in its
        # part of the batch, and must still count for the trader only.
        outcomes = bot_ticks_run(run_ids=[holder.pk, trader.pk], candle_time=START + HOUR * k)
        assert set(outcomes.values()) == {"done"}
    trader.refresh_from_db()
    holder.refresh_from_db()

    # The holder bought once and never sold: no realized P&L but its own fee.
    holder_fill = BotOrder.objects.get(run=holder).fills.get()
    assert holder.realized_pnl == -holder_fill.fee
    # The trader is flat again: its P&L is its own sells less its own buys and fees.
    assert run_pnl.run_position(trader, "BTC/USDT") == 0
    fills = BotFill.objects.filter(order__run=trader)
    assert fills.filter(side="sell").count() == 4 and {f.fee_asset for f in fills} == {"USDT"}
    sells = sum(f.qty * f.price for f in fills if f.side == "sell")
    buys = sum(f.qty * f.price for f in fills if f.side == "buy")
    assert trader.realized_pnl == sells - buys - sum(f.fee for f in fills) < 0
    # The trader's losing streak is not the holder's: no cooldown for the holder.
    assert not BotLog.objects.filter(run=holder, message__contains="losing trades").exists()
    # Unrealized P&L: the holder's own lot at the last close; none for the flat trader.
    last = EquitySnapshot.objects.filter(run=holder).last()
    assert run_pnl.run_position(holder, "BTC/USDT") == holder_fill.qty
    candle = Candle.objects.get(series__symbol="BTC/USDT", open_time=START + HOUR * 10)
    expected = holder_fill.qty * (Decimal(str(candle.close)) - holder_fill.price)
    assert abs(last.unrealized_pnl - expected) < Decimal("1e-6")
    assert EquitySnapshot.objects.filter(run=trader).last().unrealized_pnl == 0


def test_a_bot_alone_on_its_account_matches_the_ledger(alice, btc_hours):
    bot = replay_bot(alice, script_version(alice, FLIP))
    run = bot_run_start(bot=bot, acting_user=alice)
    for k in range(9):
        assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k) == "done"
    run = BotRun.objects.get(pk=run.pk)
    assert run.realized_pnl != 0
    assert run.realized_pnl == book_realized(bot.account)


def fill(pk: int, side: str, qty: str, price: str, fee: str = "0", fee_asset: str = "USDT"):
    return run_pnl.RunFill(
        pk, "BTC/USDT", side, Decimal(qty), Decimal(price), Decimal(fee), fee_asset
    )


def test_run_books_are_fifo_and_count_fees_like_the_ledger() -> None:
    # A run from before runs kept books: its P&L is rebuilt from its fills, not added to.
    run = BotRun(realized_pnl=Decimal(7), risk_state={})
    changes = run_pnl.run_fills_apply(
        run,
        [
            fill(1, "buy", "1", "100", fee="0.01", fee_asset="BTC"),  # 0.99 held at 100
            fill(2, "buy", "1", "110", fee="1"),
            fill(3, "sell", "1.5", "120", fee="2"),
        ],
    )
    # Sell 1.5: 0.99 at 100 + 0.51 at 110 -> 180 - 155.1 = 24.9; fees 1 (base, at 100) + 1 + 2.
    assert run.realized_pnl == Decimal("24.9") - Decimal("1") - Decimal("1") - Decimal("2")
    assert run_pnl.run_position(run, "BTC/USDT") == Decimal("0.49")
    assert [(c.flat_before, c.flat_after) for c in changes] == [
        (True, False),
        (False, False),
        (False, False),
    ]
    assert run_pnl.run_unrealized(run, {"BTC/USDT": Decimal(120)}) == Decimal("0.49") * 10
    # A fill seen before changes nothing; selling beyond the run's own lots makes no P&L.
    before = run.realized_pnl
    run_pnl.run_fills_apply(run, [fill(3, "sell", "1.5", "120", fee="2")])
    assert run.realized_pnl == before
    run_pnl.run_fills_apply(run, [fill(4, "sell", "1", "130")])
    assert run.realized_pnl == before + Decimal("0.49") * 20
    assert run_pnl.run_position(run, "BTC/USDT") == 0

"""The event path: identical to the vectorised simulator for condition strategies, and the
book's own rules (limits, maker/taker fees, lots, caps) on hand-computed cases."""

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.engine.backtest import StrategySpec, signals
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig, SimResult, SimulationConfigError, simulate
from apps.engine.strategies.base import BarContext, Decision, OrderIntent
from apps.engine.strategies.conditions import ConditionStrategy

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
FILES = ("BTC-USDT_1h.csv", "BTC-USD_1h.csv")  # the second has exact SMA ties
TEMPLATES = ("sma_cross", "rsi_swing", "macd", "donchian_breakout", "bollinger_reversion")
CONFIGS = {
    "plain": ExecutionConfig(fee=0.001),
    "stops": ExecutionConfig(
        fee=0.001, slippage=0.0005, stop_loss=0.03, take_profit=0.06, trailing_stop=0.04
    ),
    "trail_only_percent": ExecutionConfig(
        fee=0.002, trailing_stop=0.02, sizing="percent", size_value=0.5, max_trades_per_day=1
    ),
    "risk_drawdown": ExecutionConfig(
        fee=0.001, stop_loss=0.02, sizing="risk", size_value=0.01, max_drawdown_stop=0.3
    ),
    "fixed_tp_cap": ExecutionConfig(
        fee=0.001, take_profit=0.02, sizing="fixed", size_value=2_500, max_trades_per_day=2
    ),
    "drawdown": ExecutionConfig(fee=0.001, slippage=0.001, max_drawdown_stop=0.25),
}


@cache
def candles(name: str) -> CandleArrays:
    return read_csv(DATA / name)


def assert_same(vectorised: SimResult, event: SimResult) -> None:
    assert len(event.trades) == len(vectorised.trades)
    for mine, theirs in zip(event.trades, vectorised.trades, strict=True):
        assert mine == theirs  # every field, exact float equality
    assert np.array_equal(event.equity, vectorised.equity)
    assert event.final_equity == vectorised.final_equity
    assert event.halted_at == vectorised.halted_at
    assert event.fees_paid == vectorised.fees_paid


REASONS_SEEN: set[str] = set()


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("file", FILES)
def test_condition_strategies_trade_exactly_as_the_vectorised_simulator(
    file: str, template: str, config_name: str
) -> None:
    data, config = candles(file), CONFIGS[config_name]
    spec = StrategySpec.from_template(template)
    vectorised = simulate(data, *signals(spec, data), config)
    event = run_events(ConditionStrategy(spec), data, EventConfig(config))
    assert len(vectorised.trades) > (0 if vectorised.halted_at is not None else 5)
    assert_same(vectorised, event)
    REASONS_SEEN.update(t.exit_reason for t in event.trades)


def test_the_equivalence_matrix_reaches_every_exit_reason() -> None:
    data = candles("BTC-USD_1h.csv")
    for template in ("sma_cross", "rsi_swing"):
        spec = StrategySpec.from_template(template)
        for name in ("stops", "trail_only_percent", "fixed_tp_cap", "drawdown"):
            config = CONFIGS[name]
            event = run_events(ConditionStrategy(spec), data.head(8_000), EventConfig(config))
            REASONS_SEEN.update(t.exit_reason for t in event.trades)
    expected = {"signal", "stop_loss", "take_profit", "trailing_stop", "max_drawdown"}
    assert expected <= REASONS_SEEN, expected - REASONS_SEEN


class WindowOnly(ConditionStrategy):
    """No precomputation: the trees are evaluated on candles[:t+1] at every bar, as a bot."""

    def prepare(self, candles: CandleArrays) -> None:
        return None


@pytest.mark.parametrize("template", ["sma_cross", "bollinger_reversion", "rsi_swing"])
def test_evaluating_on_each_window_gives_the_same_trades(template: str) -> None:
    data = candles("BTC-USD_1h.csv").head(700)
    spec = StrategySpec.from_template(template, {"period": 10} if template != "sma_cross" else {})
    config = ExecutionConfig(fee=0.001, stop_loss=0.01, trailing_stop=0.015)
    vectorised = simulate(data, *signals(spec, data), config)
    assert len(vectorised.trades) > 3
    assert_same(vectorised, run_events(WindowOnly(spec), data, EventConfig(config)))


# -- the book on hand-computed cases ----------------------------------------------------


def make_candles(rows: list[tuple[float, float, float, float]]) -> CandleArrays:
    times = pd.date_range("2024-01-01", periods=len(rows), freq="h")
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return CandleArrays(times.to_numpy(dtype="datetime64[ns]"), o, h, lo, c, np.ones(len(rows)))


class Scripted:
    """A strategy that places given intents at given bars and records what it saw."""

    def __init__(self, plan: dict[int, tuple[OrderIntent, ...]]) -> None:
        self.plan, self.seen = plan, []

    def prepare(self, candles: CandleArrays) -> None:
        return None

    def on_bar(self, ctx: BarContext) -> Decision:
        bar = len(ctx.candles) - 1
        self.seen.append((bar, ctx.state))
        return Decision(self.plan.get(bar, ()))


FLAT = (100.0, 101.0, 99.0, 100.0)


def test_a_limit_buy_fills_at_its_price_with_the_maker_fee_and_a_market_sell_pays_taker():
    rows = [FLAT, (100, 100, 94, 96), (97, 99, 96, 98), FLAT]
    plan = {
        0: (OrderIntent("buy", "limit", amount=950, limit_price=95, tag="a"),),
        1: (OrderIntent("sell", tag="out"),),
    }
    config = EventConfig(
        ExecutionConfig(cash=1000, slippage=0.01), maker_fee=0.001, taker_fee=0.002
    )
    result = run_events(Scripted(plan), make_candles(rows), config)
    (trade,) = result.trades
    units = 950 / (95 * 1.001)
    assert (trade.entry_index, trade.exit_index, trade.entry_price) == (1, 2, 95)
    assert trade.size == pytest.approx(units)
    assert trade.exit_price == pytest.approx(97 * 0.99)  # slippage on the market sell only
    assert trade.fee == pytest.approx(units * 95 * 0.001 + units * 97 * 0.99 * 0.002)
    assert result.final_equity == pytest.approx(1000 + trade.pnl)


def test_a_bar_that_opens_through_a_limit_fills_at_the_open():
    rows = [FLAT, (90, 92, 88, 91), (104, 106, 103, 105), FLAT]
    plan = {
        0: (OrderIntent("buy", "limit", amount=500, limit_price=95, tag="a"),),
        1: (OrderIntent("sell", "limit", limit_price=100, tag="b"),),
    }
    result = run_events(Scripted(plan), make_candles(rows), EventConfig(ExecutionConfig(cash=1000)))
    (trade,) = result.trades
    assert (trade.entry_price, trade.exit_price) == (90, 104)
    assert trade.size == pytest.approx(500 / 90)


def test_a_limit_placed_at_a_close_cannot_fill_in_that_bar_and_the_last_decision_never_fills():
    rows = [FLAT, (100, 101, 80, 100), (100, 101, 99.5, 100)]
    plan = {1: (OrderIntent("buy", "limit", size=1, limit_price=99, tag="a"),)}
    plan[2] = (OrderIntent("buy", size=1),)
    result = run_events(Scripted(plan), make_candles(rows), EventConfig())
    assert result.trades == []
    assert [o.tag for o in result.open_orders] == ["a", ""]


def test_partial_sells_split_a_lot_and_carry_its_entry_fee_pro_rata():
    rows = [FLAT, FLAT, (110, 111, 109, 110), (120, 121, 119, 120), FLAT]
    plan = {
        0: (OrderIntent("buy", size=4, tag="x"),),
        1: (OrderIntent("sell", fraction=0.25),),
        2: (OrderIntent("sell", size=100),),  # capped at what is held
    }
    config = EventConfig(ExecutionConfig(cash=1000, fee=0.01))
    result = run_events(Scripted(plan), make_candles(rows), config)
    first, second = result.trades
    entry_fee = 4 * 100 * 0.01
    assert (first.size, first.exit_price, first.exit_index) == (1, 110, 2)
    assert first.fee == pytest.approx(entry_fee / 4 + 110 * 0.01)
    assert first.pnl == pytest.approx(110 * 0.99 - 100 - entry_fee / 4)
    assert (second.size, second.exit_price) == (3, 120)
    assert first.fee + second.fee == pytest.approx(entry_fee + 110 * 0.01 + 3 * 120 * 0.01)
    assert result.final_equity == pytest.approx(1000 + first.pnl + second.pnl)


def test_buys_never_spend_more_cash_than_held_and_sells_of_nothing_are_rejected():
    rows = [FLAT, FLAT, FLAT, FLAT]
    plan = {
        0: (OrderIntent("buy", amount=800), OrderIntent("buy", amount=800)),
        1: (OrderIntent("sell", lot="nope"),),
    }
    result = run_events(Scripted(plan), make_candles(rows), EventConfig(ExecutionConfig(cash=1000)))
    sizes = [t.size for t in result.trades]
    assert sizes == pytest.approx([8, 2])  # the second buy gets what was left
    assert result.equity[1] == pytest.approx(1000)
    assert any("nothing held" in line for line in result.rejected)


def test_max_trades_per_day_caps_every_new_lot():
    rows = [FLAT] * 5
    plan = {b: (OrderIntent("buy", amount=100),) for b in range(4)}
    config = EventConfig(ExecutionConfig(cash=1000, max_trades_per_day=2))
    result = run_events(Scripted(plan), make_candles(rows), config)
    assert len(result.trades) == 2
    assert sum("max_trades_per_day" in line for line in result.rejected) == 2


def test_the_strategy_sees_only_the_window_and_its_own_account():
    rows = [FLAT, (100, 102, 98, 101), (101, 103, 100, 102)]
    strategy = Scripted({0: (OrderIntent("buy", size=2, tag="lot"),)})
    run_events(strategy, make_candles(rows), EventConfig(ExecutionConfig(cash=1000)))
    (b0, s0), (b1, s1), (b2, _) = strategy.seen
    assert (b0, b1, b2) == (0, 1, 2)
    assert s0.position.is_flat and s0.balance.cash == 1000
    assert s1.position.size == 2 and s1.position.avg_price == 100
    assert s1.balance.equity == pytest.approx(800 + 2 * 101)


def test_maker_and_taker_fees_are_validated():
    with pytest.raises(SimulationConfigError, match="maker_fee"):
        run_events(Scripted({}), make_candles([FLAT]), EventConfig(maker_fee=0.5))

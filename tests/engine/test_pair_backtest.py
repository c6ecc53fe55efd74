"""`run_pair_backtest`: the path each pair takes, and limit orders for condition strategies
on hand-built candles whose fills are worked out here."""

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.engine.backtest import StrategySpec, run_backtest
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.event_book import EventConfig
from apps.engine.pair_backtest import PairSettings, run_pair_backtest
from apps.engine.simulator import ExecutionConfig, SimulationConfigError
from apps.engine.strategies.base import EventSpec

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"

# A strategy whose signals are written into the candles: a bar whose volume is 2 closes
# with an entry signal, 3 with an exit signal, 1 with neither.
VOLUME = {"": 1.0, "entry": 2.0, "exit": 3.0}
TAPE = StrategySpec.from_tree(
    {
        "entry": {
            "all": [
                {"left": {"field": "volume"}, "op": ">", "right": 1.5},
                {"left": {"field": "volume"}, "op": "<", "right": 2.5},
            ]
        },
        "exit": {"left": {"field": "volume"}, "op": ">", "right": 2.5},
    }
)
Row = tuple[float, float, float, float, str]


def tape(rows: list[Row], start: str = "2024-01-01", freq: str = "h") -> CandleArrays:
    """Candles from (open, high, low, close, signal) rows, one bar per `freq` from `start`."""
    times = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC").tz_localize(None)
    o, h, lo, c, signal = zip(*rows, strict=True)
    return CandleArrays(
        times.to_numpy(dtype="datetime64[ns]"),
        *(np.array(column, dtype=float) for column in (o, h, lo, c)),
        np.array([VOLUME[s] for s in signal]),
    )


FLAT: Row = (100, 101, 99, 100, "")


def limit_settings(offset: float, **execution: float) -> PairSettings:
    config = EventConfig(ExecutionConfig(cash=1000, **execution), maker_fee=0.001, taker_fee=0.002)
    return PairSettings(config, order_type="limit", limit_offset=offset)


def test_a_limit_entry_and_exit_fill_at_their_limits_with_the_maker_fee():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),  # buy limit at 100 x 0.98 = 98
        (100, 100, 97, 99, ""),  # trades down through 98: filled at 98
        (99, 101, 98, 100, "exit"),  # sell limit at 100 x 1.02 = 102
        (101, 103, 100, 102, ""),  # trades up through 102: filled at 102
        FLAT,
    ]
    report = run_pair_backtest(TAPE, tape(rows), limit_settings(0.02))
    (trade,) = report.result.trades
    units = 1000 / (98 * 1.001)
    assert (trade.entry_index, trade.entry_price, trade.exit_index, trade.exit_price) == (
        1,
        98,
        3,
        102,
    )
    assert trade.size == pytest.approx(units, rel=1e-12)
    assert trade.fee == pytest.approx(units * 98 * 0.001 + units * 102 * 0.001, rel=1e-12)
    assert trade.pnl == pytest.approx(units * 102 * 0.999 - 1000, rel=1e-12)
    assert trade.exit_reason == "signal"
    assert report.metrics.final_equity == pytest.approx(1000 + trade.pnl, rel=1e-12)


def test_an_unfilled_entry_limit_is_cancelled_after_one_bar_and_placed_again_while_signalled():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),  # limit at 98
        (100, 101, 98.5, 99, "entry"),  # misses 98; placed again at 99 x 0.98 = 97.02
        (99, 99.5, 97.5, 98, ""),  # misses 97.02; cancelled, not placed again
        (98, 98, 90, 92, ""),  # would have filled either limit
        FLAT,
    ]
    report = run_pair_backtest(TAPE, tape(rows), limit_settings(0.02))
    assert report.result.trades == []
    assert report.result.open_orders == []
    assert report.metrics.final_equity == 1000


def test_an_exit_limit_that_misses_its_bar_becomes_a_market_sell_at_the_following_open():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),  # limit at 98
        (97, 99, 96, 98, "exit"),  # opens below 98: filled at the open, 97; sell limit 99.96
        (98, 99, 97, 98, ""),  # misses 99.96: a market sell at the next open
        (95, 96, 94, 95, ""),
        FLAT,
    ]
    report = run_pair_backtest(TAPE, tape(rows), limit_settings(0.02, slippage=0.001))
    (trade,) = report.result.trades
    units = 1000 / (97 * 1.001)
    exit_price = 95 * 0.999  # a market order pays slippage and the taker fee
    assert (trade.entry_index, trade.entry_price, trade.exit_index) == (1, 97, 3)
    assert trade.exit_price == pytest.approx(exit_price, rel=1e-12)
    assert trade.fee == pytest.approx(units * 97 * 0.001 + units * exit_price * 0.002, rel=1e-12)
    assert trade.exit_reason == "signal"


@pytest.mark.parametrize(
    ("bar", "fill"), [((99, 100, 98, 99, ""), 99), ((101, 102, 99.5, 100, ""), 100)]
)
def test_a_zero_offset_limit_fills_at_the_lower_of_the_open_and_the_signal_close(bar, fill):
    rows: list[Row] = [(100, 101, 99, 100, "entry"), bar, FLAT]
    report = run_pair_backtest(TAPE, tape(rows), limit_settings(0.0))
    (trade,) = report.result.trades
    assert (trade.entry_index, trade.entry_price) == (1, fill)
    assert trade.fee == pytest.approx(1000 / (fill * 1.001) * fill * 0.001, rel=1e-12)


def test_a_stop_closes_a_limit_position_and_takes_its_resting_exit_limit_with_it():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),  # limit at 98
        (100, 100, 97, 99, ""),  # filled at 98; stop-loss at 98 x 0.95 = 93.1
        (99, 101, 98, 100, "exit"),  # sell limit at 102
        (99, 103, 90, 95, ""),  # the stop (checked before limit sells) fills at 93.1
        FLAT,
    ]
    report = run_pair_backtest(TAPE, tape(rows), limit_settings(0.02, stop_loss=0.05))
    (trade,) = report.result.trades
    assert (trade.exit_index, trade.exit_reason) == (3, "stop_loss")
    assert trade.exit_price == pytest.approx(98 * 0.95, rel=1e-12)
    assert report.result.open_orders == [] and report.result.rejected == []


def test_the_max_drawdown_stop_sells_a_limit_position_at_the_next_open_and_halts():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),
        (100, 100, 97, 99, ""),  # filled at 98
        (99, 99, 84, 85, "entry"),  # closes 13 % below the entry: over the 10 % limit
        (86, 87, 85, 86, "entry"),  # sold at the open; no new entries after the halt
        (86, 87, 80, 86, ""),
    ]
    settings = limit_settings(0.02, max_drawdown_stop=0.1)
    result = run_pair_backtest(TAPE, tape(rows), settings).result
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (3, 86, "max_drawdown")
    assert result.halted_at == 3


@cache
def btc() -> CandleArrays:
    return read_csv(DATA / "BTC-USDT_1h.csv").head(6_000)


def test_on_real_candles_every_limit_entry_is_at_or_below_its_signal_close_less_the_offset():
    candles = btc()
    settings = limit_settings(0.003, stop_loss=0.02)
    report = run_pair_backtest(StrategySpec.from_template("sma_cross"), candles, settings)
    trades = report.result.trades
    assert len(trades) > 20
    for trade in trades:
        limit = candles.close[trade.entry_index - 1] * (1 - 0.003)
        assert trade.entry_price == min(candles.open[trade.entry_index], limit)
        assert candles.low[trade.entry_index] <= limit
    # Fewer entries than market orders: some limits are never reached.
    market = run_backtest(
        StrategySpec.from_template("sma_cross"), candles, settings.execution.execution
    )
    assert len(trades) < len(market.result.trades)


def test_spot_market_orders_take_the_vectorised_simulator():
    candles = btc()
    spec = StrategySpec.from_template("sma_cross")
    config = ExecutionConfig(fee=0.001, stop_loss=0.03)
    report = run_pair_backtest(spec, candles, PairSettings(EventConfig(config)))
    assert report.result.trades == run_backtest(spec, candles, config).result.trades
    assert report.market == "spot"
    # The CLI's documented keys, nothing futures-only.
    trade, times = report.as_json()["trades"][0], ["entry_time", "exit_time"]
    assert list(trade) == [*times, "entry_price", "exit_price", "size", "fee", "pnl", "exit_reason"]
    assert not {"funding_paid", "liquidations"} & set(report.as_json()["metrics"])


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (PairSettings(EventConfig(), order_type="stop"), "order_type"),
        (PairSettings(EventConfig(), order_type="limit", limit_offset=0.7), "limit_offset"),
        (PairSettings(EventConfig(), market="margin"), "market"),
        (PairSettings(EventConfig(), market="futures"), "market"),  # grid runs on spot only
    ],
)
def test_bad_pair_settings_raise_naming_the_field(settings, field):
    with pytest.raises(SimulationConfigError, match=f"^{field}"):
        run_pair_backtest(EventSpec("grid"), tape([FLAT, FLAT]), settings)

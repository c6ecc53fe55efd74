"""The fill model, checked against hand-computed cases and against backtesting.py."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.engine.candles import CandleArrays, read_csv
from apps.engine.simulator import ExecutionConfig, SimulationConfigError, simulate

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"


def make_candles(
    rows: list[tuple[float, float, float, float]], start: str = "2024-01-01"
) -> CandleArrays:
    times = pd.date_range(start, periods=len(rows), freq="h")
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return CandleArrays(times.to_numpy(dtype="datetime64[ns]"), o, h, lo, c, np.ones(len(rows)))


def signals(n: int, at: list[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[at] = True
    return out


FLAT = (100.0, 101.0, 99.0, 100.0)


def test_a_decision_fills_at_the_next_open_with_fees_on_both_sides():
    candles = make_candles([FLAT, (110, 111, 109, 110), (120, 121, 119, 120), (130, 131, 129, 130)])
    result = simulate(
        candles, signals(4, [0]), signals(4, [1]), ExecutionConfig(cash=1000, fee=0.01)
    )
    (trade,) = result.trades
    units = 1000 / (110 * 1.01)
    assert (trade.entry_index, trade.exit_index) == (1, 2)
    assert trade.entry_price == 110 and trade.exit_price == 120
    assert trade.size == pytest.approx(units)
    assert trade.fee == pytest.approx(units * 110 * 0.01 + units * 120 * 0.01)
    assert result.final_equity == pytest.approx(units * 120 * 0.99)
    assert trade.pnl == pytest.approx(units * 120 * 0.99 - 1000)
    # Equity: flat at bar 0, marked at bar 1's close, flat after the exit at bar 2's open.
    assert result.equity[0] == 1000
    assert result.equity[1] == pytest.approx(units * 110)
    assert result.equity[3] == pytest.approx(units * 120 * 0.99)


def test_a_decision_on_the_last_bar_never_fills_and_an_open_trade_is_valued_at_the_last_close():
    candles = make_candles([FLAT, (100, 105, 95, 104), (104, 106, 100, 105)])
    result = simulate(candles, signals(3, [0, 2]), signals(3, []), ExecutionConfig(cash=1000))
    (trade,) = result.trades
    assert trade.exit_index is None and trade.exit_reason == "open"
    assert result.final_equity == pytest.approx(1000 / 100 * 105)


def test_stop_loss_fills_at_the_level_and_a_gap_fills_at_the_open():
    rows = [FLAT, (100, 101, 94, 96), FLAT]
    result = simulate(
        make_candles(rows), signals(3, [0]), signals(3, []), ExecutionConfig(stop_loss=0.05)
    )
    assert result.trades[0].exit_price == pytest.approx(95)
    assert result.trades[0].exit_index == 1 and result.trades[0].exit_reason == "stop_loss"

    gap = [FLAT, (100, 101, 99, 100), (90, 91, 85, 88)]
    result = simulate(
        make_candles(gap), signals(3, [0]), signals(3, []), ExecutionConfig(stop_loss=0.05)
    )
    assert result.trades[0].exit_price == 90  # the market opened below the stop


def test_when_stop_and_target_are_both_touched_in_one_bar_the_stop_wins():
    rows = [FLAT, (100, 112, 94, 100), FLAT]
    config = ExecutionConfig(stop_loss=0.05, take_profit=0.10)
    (trade,) = simulate(make_candles(rows), signals(3, [0]), signals(3, []), config).trades
    assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(95)


def test_trailing_stop_follows_earlier_highs_only():
    rows = [FLAT, (100, 120, 99, 118), (118, 119, 107, 110), FLAT]
    config = ExecutionConfig(trailing_stop=0.1)
    (trade,) = simulate(make_candles(rows), signals(4, [0]), signals(4, []), config).trades
    # Bar 1's own high (120) does not protect bar 1; from bar 2 the trail sits at 108.
    assert trade.exit_index == 2 and trade.exit_reason == "trailing_stop"
    assert trade.exit_price == pytest.approx(108)


def test_risk_sizing_risks_the_fraction_of_equity_at_the_stop_distance():
    rows = [FLAT, FLAT, FLAT]
    config = ExecutionConfig(cash=10_000, sizing="risk", size_value=0.005, stop_loss=0.02)
    (trade,) = simulate(make_candles(rows), signals(3, [0]), signals(3, []), config).trades
    assert trade.size * 100 * 0.02 == pytest.approx(50)  # 0.5 % of 10,000 lost at the stop


def test_max_trades_per_day_skips_further_entries_that_day():
    rows = [FLAT] * 8
    entries, exits = signals(8, [0, 2, 4]), signals(8, [1, 3, 5])
    result = simulate(make_candles(rows), entries, exits, ExecutionConfig(max_trades_per_day=2))
    assert [t.entry_index for t in result.trades] == [1, 3]


def test_the_drawdown_stop_closes_the_position_and_halts_trading():
    rows = [FLAT, FLAT, (100, 100, 70, 70), (70, 71, 69, 70), FLAT, FLAT]
    config = ExecutionConfig(max_drawdown_stop=0.2)
    result = simulate(make_candles(rows), signals(6, [0, 4]), signals(6, []), config)
    assert len(result.trades) == 1
    assert result.trades[0].exit_reason == "max_drawdown" and result.trades[0].exit_index == 3
    assert result.halted_at == 3


@pytest.mark.parametrize(
    ("field", "value"), [("fee", -0.1), ("stop_loss", 1.5), ("cash", 0), ("size_value", 2.0)]
)
def test_out_of_range_settings_name_the_field(field, value):
    config = ExecutionConfig(**{field: value, "sizing": "percent"})
    with pytest.raises(SimulationConfigError, match=field):
        config.validate()


def _sma_cross(candles: CandleArrays, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    close = pd.Series(candles.close)
    f, s = close.rolling(fast).mean().to_numpy(), close.rolling(slow).mean().to_numpy()
    up, down = np.zeros(len(candles), bool), np.zeros(len(candles), bool)
    up[1:] = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
    down[1:] = (f[:-1] > s[:-1]) & (f[1:] < s[1:])
    return up, down


@pytest.mark.parametrize("name", ["BTC-USDT_1h.csv", "BTC-USD_1h.csv"])
def test_sma_cross_trades_equal_backtesting_py_on_real_candles(name):
    backtesting = pytest.importorskip("backtesting")
    from backtesting.lib import FractionalBacktest, crossover

    candles = read_csv(DATA / name)
    up, down = _sma_cross(candles, 10, 30)
    ours = simulate(candles, up, down, ExecutionConfig(cash=10_000, fee=0.001))

    frame = pd.read_csv(DATA / name, parse_dates=["timestamp"], index_col="timestamp")
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]

    def sma(values, n):
        return pd.Series(values).rolling(n).mean()

    class SmaCross(backtesting.Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    stats = FractionalBacktest(frame, SmaCross, cash=10_000, commission=0.001).run()
    theirs = stats._trades
    closed = [t for t in ours.trades if t.exit_index is not None]
    assert len(closed) == len(theirs) > 500
    naive = pd.DatetimeIndex(candles.time)
    assert list(naive[[t.entry_index for t in closed]]) == list(
        theirs.EntryTime.dt.tz_localize(None)
    )
    assert list(naive[[t.exit_index for t in closed]]) == list(theirs.ExitTime.dt.tz_localize(None))
    assert [t.entry_price for t in closed] == pytest.approx(list(theirs.EntryPrice), rel=1e-12)
    # backtesting.py trades whole satoshis; equity agrees to that rounding.
    assert ours.final_equity == pytest.approx(stats["Equity Final [$]"], rel=1e-6)


@pytest.mark.parametrize("name", ["BTC-USDT_1h.csv", "BTC-USD_1h.csv", "ETH-BTC_5m.csv"])
@pytest.mark.parametrize("sizing", [("all_in", 1.0), ("percent", 0.5), ("fixed", 2500.0)])
def test_the_signal_only_fast_path_is_bit_identical_to_the_per_trade_loop(name, sizing):
    from apps.engine.simulator import _Simulation

    candles = read_csv(DATA / name)
    up, down = _sma_cross(candles, 10, 30)
    config = ExecutionConfig(
        cash=10_000, fee=0.001, slippage=0.0005, sizing=sizing[0], size_value=sizing[1]
    )
    fast = simulate(candles, up, down, config)
    loop = _Simulation(candles, up, down, config).run_per_trade()
    assert fast.trades == loop.trades and len(fast.trades) > 100
    assert np.array_equal(fast.equity, loop.equity)
    assert fast.final_equity == loop.final_equity and fast.fees_paid == loop.fees_paid
